"""A narrow autoencoder that embeds exactly into ComfyUI's TAESD layout (pure torch, no comfy import).

ComfyUI's TAESD (comfy/taesd/taesd.py) is a fixed stack of 64-channel 3x3 convolutions: an encoder of
4 stages (full, 1/2, 1/4, 1/8 resolution; 1, 3, 3, 3 residual blocks) and a mirrored decoder (3, 3, 3, 1
blocks). Training it at full width on two CPU cores is too slow, so we train a network of the same shape
with fewer channels per stage and with some residual blocks switched off, and export it by zero-padding:

- a TAESD Block is relu(conv(x) + x); with its last convolution zero it is relu(x), so a switched-off block
  is a ReLU here and all-zero weights there;
- zero-padded channels stay zero through every convolution and ReLU, so a narrow layer padded to 64
  channels computes the same function.

`to_taesd_state_dict` returns the keys ComfyUI detects as TAESD ("taesd_encoder.*", "taesd_decoder.*",
"vae_scale", "vae_shift"); `comfy.sd.VAE(sd=...)` and the standard VAELoader load it unchanged.
"""

import torch
from torch import nn

TAESD_WIDTH = 64
ENCODER_SLOTS = (1, 3, 3, 3)  # residual blocks per encoder stage in TAESD
DECODER_SLOTS = (3, 3, 3, 1)  # residual blocks per decoder stage (coarse to fine) in TAESD

DEFAULT_CONFIG = {
    "latent_channels": 4,
    "encoder_widths": [16, 32, 48, 64],  # full, 1/2, 1/4, 1/8 resolution
    "encoder_blocks": [0, 0, 1, 2],  # active blocks per stage (the rest are plain ReLUs)
    "decoder_widths": [64, 48, 32, 16],  # 1/8, 1/4, 1/2, full resolution
    "decoder_blocks": [2, 1, 1, 0],
}
# A wider decoder for worlds whose defects are a few pixels (v3): the VAE gate is round-trip PSNR >= 28 dB.
WIDE_DECODER = {"decoder_widths": [64, 64, 48, 32], "decoder_blocks": [3, 2, 2, 1]}


def _conv(n_in, n_out, stride=1, bias=True):
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class Block(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.conv = nn.Sequential(_conv(n, n), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + x)


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


def _stage(width, active, slots):
    return [Block(width) if i < active else nn.ReLU() for i in range(slots)]


class NarrowTAESD(nn.Module):
    """Encoder/decoder with TAESD's layer sequence (same indices), narrower and partly switched off.
    Images in [0, 1]; latents are the raw TAESD encoder output."""

    def __init__(self, config=None):
        super().__init__()
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        c = self.config
        ew, eb, dw, db = c["encoder_widths"], c["encoder_blocks"], c["decoder_widths"], c["decoder_blocks"]
        if max(ew + dw) > TAESD_WIDTH:
            raise ValueError(f"widths must be <= {TAESD_WIDTH}")
        if any(b > s for b, s in zip(eb, ENCODER_SLOTS, strict=True)) or any(
                b > s for b, s in zip(db, DECODER_SLOTS, strict=True)):
            raise ValueError("more active blocks than TAESD has slots")
        lc = c["latent_channels"]
        enc = [_conv(3, ew[0]), *_stage(ew[0], eb[0], 1)]
        for s in range(1, 4):
            enc += [_conv(ew[s - 1], ew[s], stride=2, bias=False), *_stage(ew[s], eb[s], 3)]
        enc.append(_conv(ew[3], lc))
        dec = [Clamp(), _conv(lc, dw[0]), nn.ReLU(), *_stage(dw[0], db[0], 3)]
        for s in range(1, 4):
            dec += [nn.Upsample(scale_factor=2), _conv(dw[s - 1], dw[s], bias=False), *_stage(dw[s], db[s], DECODER_SLOTS[s])]
        dec.append(_conv(dw[3], 3))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        for m in self.modules():  # He init keeps the signal alive through the plain conv stack
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for m in self.modules():  # residual branches start at zero: each block starts as a ReLU
            if isinstance(m, Block):
                nn.init.zeros_(m.conv[4].weight)

    def encode(self, images):
        return self.encoder(images)

    def decode(self, latents):
        return self.decoder(latents)

    def to_taesd_state_dict(self, vae_scale, vae_shift):
        """Zero-padded weights under ComfyUI's TAESD keys (float32)."""
        out = {}
        for prefix, seq in (("taesd_encoder", self.encoder), ("taesd_decoder", self.decoder)):
            for index, module in enumerate(seq):
                if isinstance(module, nn.Conv2d):
                    _export_conv(out, f"{prefix}.{index}", module, prefix, index == len(seq) - 1)
                elif isinstance(module, Block):
                    for j in (0, 2, 4):
                        _export_conv(out, f"{prefix}.{index}.conv.{j}", module.conv[j], prefix, False)
                elif isinstance(module, nn.ReLU) and _is_block_slot(prefix, index):
                    for j in (0, 2, 4):  # a switched-off block: relu(0 + x)
                        out[f"{prefix}.{index}.conv.{j}.weight"] = torch.zeros(TAESD_WIDTH, TAESD_WIDTH, 3, 3)
                        out[f"{prefix}.{index}.conv.{j}.bias"] = torch.zeros(TAESD_WIDTH)
        out["vae_scale"] = torch.tensor(float(vae_scale))
        out["vae_shift"] = torch.tensor(float(vae_shift))
        return out


def from_taesd_state_dict(state_dict):
    """The inverse of to_taesd_state_dict: the NarrowTAESD whose export a TAESD state dict is (its widths are the
    non-zero channels, its active blocks the non-zero block slots), so benchmarks can round-trip images through a
    demo model's own autoencoder without ComfyUI, at the narrow network's cost."""
    sd = {k: v.float() for k, v in state_dict.items()}

    def width(key):  # output channels with any non-zero weight or bias
        w, b = sd[f"{key}.weight"], sd.get(f"{key}.bias")
        used = w.flatten(1).abs().sum(1) > 0
        return int((used | (b.abs() > 0) if b is not None else used).nonzero().max()) + 1

    def active(prefix, heads, end):  # per stage: its block slots (between its head conv and the next) in use
        return [sum(any(sd[f"{prefix}.{i}.conv.{j}.weight"].abs().sum() > 0 for j in (0, 2, 4))
                    for i in _block_slots(prefix) if lo < i < hi) for lo, hi in zip(heads, (*heads[1:], end), strict=True)]

    encoder_heads, decoder_heads = (0, 2, 6, 10), (1, 7, 12, 17)
    config = {"latent_channels": int(sd["taesd_encoder.14.weight"].shape[0]),
              "encoder_widths": [width(f"taesd_encoder.{i}") for i in encoder_heads],
              "encoder_blocks": active("taesd_encoder", encoder_heads, 14),
              "decoder_widths": [width(f"taesd_decoder.{i}") for i in decoder_heads],
              "decoder_blocks": active("taesd_decoder", decoder_heads, 19)}
    ae = NarrowTAESD(config)
    for prefix, seq in (("taesd_encoder.", ae.encoder), ("taesd_decoder.", ae.decoder)):
        own, narrow = seq.state_dict(), {}
        for key, value in sd.items():  # the narrow net's corner of each tensor; the rest must be zero padding
            if not key.startswith(prefix):
                continue
            name, rest = key[len(prefix):], value.clone()
            if name in own:
                corner = tuple(slice(0, n) for n in own[name].shape)
                narrow[name], rest[corner] = value[corner], 0
            if rest.abs().sum() > 0:
                raise ValueError(f"{key}: weights outside the detected narrow network {config}; not a zero-padded "
                                 "NarrowTAESD export")
        seq.load_state_dict(narrow)
    return ae.eval().requires_grad_(False)


def _block_slots(prefix):
    """Indices of Block modules in TAESD's Sequential (see comfy/taesd/taesd.py)."""
    if prefix == "taesd_encoder":
        return {1, 3, 4, 5, 7, 8, 9, 11, 12, 13}
    return {3, 4, 5, 8, 9, 10, 13, 14, 15, 18}


def _is_block_slot(prefix, index):
    return index in _block_slots(prefix)


def _export_conv(out, key, conv, prefix, is_last):
    w = conv.weight.detach().float()
    n_out, n_in = w.shape[:2]
    full_out = n_out if (is_last or (prefix == "taesd_encoder" and key.endswith(".14"))) else TAESD_WIDTH
    full_in = n_in if (key == "taesd_encoder.0" or key == "taesd_decoder.1") else TAESD_WIDTH
    padded = torch.zeros(full_out, full_in, *w.shape[2:])
    padded[:n_out, :n_in] = w
    out[f"{key}.weight"] = padded
    if conv.bias is not None:
        bias = torch.zeros(full_out)
        bias[:n_out] = conv.bias.detach().float()
        out[f"{key}.bias"] = bias
