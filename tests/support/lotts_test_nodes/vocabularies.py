"""Tokenizer vocabularies in the formats some text encoders carry inside their checkpoints (ComfyUI bundles none of
them): small, built in code, read by ComfyUI's own tokenizer classes as tokenizer_data, as a checkpoint's would be."""

import base64
import io
import json
import re

import torch


def tekken_vocabulary(words, n_special=100):
    """A Mistral tekken file's JSON (FLUX.2 dev's Mistral 3 and ERNIE's Ministral 3 carry their tokenizer in it): every
    byte, and BPE merges spelling each word and each word after a space."""
    specials = {0: "<unk>", 1: "<s>", 2: "</s>", 3: "[INST]", 4: "[/INST]", 11: "<pad>", 17: "[SYSTEM_PROMPT]",
                18: "[/SYSTEM_PROMPT]"}
    pieces = [bytes([b]) for b in range(256)]
    for word in words:
        for spelled in (word, " " + word):
            pieces += [p for p in (spelled[:end].encode() for end in range(2, len(spelled) + 1)) if p not in pieces]
    return json.dumps({
        "config": {"default_num_special_tokens": n_special, "default_vocab_size": n_special + len(pieces)},
        "vocab": [{"rank": r, "token_bytes": base64.b64encode(p).decode()} for r, p in enumerate(pieces)],
        "special_tokens": [{"rank": i, "token_str": specials.get(i, f"<SPECIAL_{i}>"), "is_control": True}
                           for i in range(n_special)]}).encode()


def as_checkpoint_tensor(blob):
    """A tokenizer blob as a checkpoint's state dict stores it: a uint8 tensor."""
    return torch.frombuffer(bytearray(blob), dtype=torch.uint8)


def ministral_tokenizer_data():
    return {"tekken_model": as_checkpoint_tensor(tekken_vocabulary(("a", "red", "circle", "image")))}


# text the tiny SentencePiece model is trained on: PixelDiT's own chi prompt (every prompt is wrapped in it) + a few
_SPIECE_TEXT = (
    "a red circle", "a blue square on a wooden table", "A photo of a cat sleeping on a sunny windowsill.",
    "Given a user prompt, generate an \"Enhanced prompt\" that provides detailed visual descriptions suitable for "
    "image generation. Evaluate the level of detail in the user prompt:",
    "- If the prompt is simple, focus on adding specifics about colors, shapes, sizes, textures, and spatial "
    "relationships to create vivid and concrete scenes.",
    "- If the prompt is already detailed, refine and enhance the existing details slightly without overcomplicating.",
    "Here are examples of how to transform or refine prompts:",
    "- User Prompt: A busy city street -> Enhanced: A bustling city street scene at dusk, featuring glowing street "
    "lamps, a diverse crowd of people in colorful clothing, and a double-decker bus passing by towering glass "
    "skyscrapers.",
    "Please generate only the enhanced description for the prompt below and avoid including any additional "
    "commentary or evaluations:", "User Prompt: 0123456789",
)


def gemma_tokenizer_data():
    """A tiny Gemma-style SentencePiece model, trained here (Gemma 2's tokenizer.model ships only inside the
    checkpoint, under "spiece_model"; ComfyUI does not bundle it). Gemma's special ids (pad 0, eos 1, bos 2, unk 3),
    BPE with byte fallback, identity normalisation, no dummy prefix; trained on one thread, so deterministic."""
    import sentencepiece  # a ComfyUI requirement

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_SPIECE_TEXT), model_writer=buffer, model_type="bpe", vocab_size=400,
        hard_vocab_limit=False, character_coverage=1.0, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, num_threads=1, minloglevel=2)
    return {"spiece_model": as_checkpoint_tensor(buffer.getvalue())}


# text the tiny mT5 SentencePiece model is trained on: English and Chinese (Hunyuan-DiT is bilingual)
_MT5_TEXT = (
    "a red circle", "a blue square on a wooden table", "A photo of a cat sleeping on a sunny windowsill.",
    "a bustling city street at dusk with glowing street lamps", "an oil painting of mountains and a lake",
    "一个红色的圆", "木桌上的蓝色正方形", "一只猫在阳光明媚的窗台上睡觉", "黄昏时分繁华的城市街道", "山和湖的油画",
    "0123456789", "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",  # every Latin letter, so no <unk>
)


def mt5_tokenizer_data():
    """A tiny mT5-style SentencePiece model, trained here (mT5-XL's spiece.model ships only inside Hunyuan-DiT
    text-encoder checkpoints, under "mt5xl.spiece_model"; ComfyUI does not bundle it). mT5's special ids (pad 0,
    eos 1, unk 2, no bos), unigram, NFKC normalisation, dummy prefix; trained on one thread, so deterministic."""
    import sentencepiece  # a ComfyUI requirement

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_MT5_TEXT), model_writer=buffer, model_type="unigram", vocab_size=160,
        hard_vocab_limit=False, character_coverage=1.0, normalization_rule_name="nmt_nfkc", add_dummy_prefix=True,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1, minloglevel=2)
    return {"mt5xl.spiece_model": as_checkpoint_tensor(buffer.getvalue())}


# GPT-OSS's o200k_harmony tokenizer.json ships only inside Lens text-encoder checkpoints (a uint8 "tokenizer_json"
# tensor that comfy.sd hands over as tokenizer_data). This builds a small one in the same HF format: the o200k split
# regex + byte-level BPE (ignore_merges, as converted tiktoken vocabularies), the Harmony special tokens at their real
# ids (<|endoftext|> 199999 is Lens's pad id, so the encoder keeps GPT-OSS's 201088-row embedding), and whole-word
# entries for the chat template's words, so the template prefix before the prompt is exactly LENS_TXT_OFFSET = 97
# tokens as with the real vocabulary (one word, " detailing", is left in two pieces by two merge chains to make 97).
# Prompt words outside this list fall back to byte tokens.
_O200K_SPLIT = ("[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
                "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
_HARMONY_SPECIAL = {"<|startoftext|>": 199998, "<|endoftext|>": 199999, "<|return|>": 200002,
                    "<|constrain|>": 200003, "<|channel|>": 200005, "<|start|>": 200006, "<|end|>": 200007,
                    "<|message|>": 200008, "<|call|>": 200012}
_LENS_PROMPT_WORDS = "a red circle blue green square triangle cat dog on white black background photo of the"


def gpt_oss_tokenizer_data():
    import comfy.text_encoders.gpt_oss as gpt_oss
    from tokenizers import Regex, pre_tokenizers

    byte_chars = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))  # GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest above 255
    byte_map = {b: chr(b) if b in byte_chars else chr(next(extra)) for b in range(256)}
    vocab = {byte_map[b]: b for b in range(256)}
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(_O200K_SPLIT), "isolated"),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    split_word, pieces = byte_map[32] + "detailing", (byte_map[32] + "detail", "ing")
    text = re.split(r"<\|[a-z]+\|>", gpt_oss._lens_render_chat(_LENS_PROMPT_WORDS) + " " + _LENS_PROMPT_WORDS)
    merges = []
    for piece in pieces:  # left-to-right merge chains that rebuild the two pieces of the split word
        for i in range(2, len(piece) + 1):
            vocab.setdefault(piece[:i], len(vocab))
            merges.append(f"{piece[:i - 1]} {piece[i - 1]}")
    for part in text:
        for word, _ in pre.pre_tokenize_str(part):
            if word != split_word:
                vocab.setdefault(word, len(vocab))
    # special tokens sit in the BPE vocabulary at their real ids too: tokenizers renumbers added tokens that the model
    # vocabulary lacks to the next free id (the real vocabulary is contiguous up to 199997, ours is not)
    vocab.update(_HARMONY_SPECIAL)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for t, i in _HARMONY_SPECIAL.items()]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": _O200K_SPLIT}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }
    blob = json.dumps(tokenizer, ensure_ascii=False).encode("utf-8")
    return {"tokenizer_json": as_checkpoint_tensor(blob)}
