"""The prompt's own tokens located inside chat templates, with the real tokenizers ComfyUI bundles (Qwen2.5 / Qwen3's
BPE, used by Qwen-Image, Z-Image and FLUX.2 Klein). Mistral's and Gemma's tokenizers ship inside the model files,
not with ComfyUI, so they cannot be loaded here."""

import pytest
import torch

PROMPT = "a red cube on a wooden table"
TEMPLATED = ("zimage", "qwen_image", "flux2", "longcat_image")


@pytest.fixture(params=TEMPLATED)
def templated(request, comfy_env):
    specs = comfy_env.test_pack.tiny_models.FAMILY_SPECS
    if request.param not in specs:
        pytest.skip(f"this host has no {request.param} model class")
    _, clip, _ = comfy_env.test_pack.tiny_models.tiny_family(request.param)
    if getattr(clip.tokenizer, "llama_template", None) is None and not hasattr(clip.tokenizer, "T2I_PREFIX"):
        pytest.skip(f"{request.param}'s text encoder on this host has no chat template")
    return request.param, clip


def test_weights_sit_on_the_prompt_inside_the_chat_template(comfy_env, templated):
    family, clip = templated
    tokens = comfy_env.pack.nodes._prompt_tokens
    with torch.inference_mode():
        encoded = tokens.encode_quality_conditionings(clip, PROMPT, "A high-quality image of {p}.",
                                                      "{p}, low quality")
    texts = [PROMPT, f"A high-quality image of {PROMPT}.", f"{PROMPT}, low quality"]
    key = next(iter(clip.tokenize(PROMPT)))
    inner = getattr(clip.tokenizer, key)
    for text, (conditioning, weights) in zip(texts, encoded, strict=True):
        n_tokens = conditioning[0][0].shape[1]
        assert weights.shape == (n_tokens,) and abs(float(weights.sum()) - 1.0) < 1e-5
        ids = [t[0] for chunk in clip.tokenize(text)[key] for t in chunk]
        dropped = len(ids) - n_tokens  # Qwen-Image's encoder drops the template's start from its output
        if family == "longcat_image":  # its encoder cuts through the second <|im_start|> + "user\n", and the end
            dropped = [i for i, t in enumerate(ids) if t == 151644][1] + 3
            assert len(ids) - n_tokens > dropped
        assert dropped >= 0 and (dropped > 0) == (family in ("qwen_image", "longcat_image"))
        positions = torch.nonzero(weights).flatten().tolist()
        assert positions == list(range(positions[0], positions[-1] + 1))  # one contiguous run
        picked = inner.tokenizer.decode([ids[p + dropped] for p in positions])
        assert picked.strip() == PROMPT, (family, text, picked)
        # the template's role tags around the prompt carry no weight
        assert len(positions) < n_tokens and not {ids[p + dropped] for p in positions} & {151644, 151645}


def test_clip_and_t5_streams_still_map_word_by_word(comfy_env, tiny):
    _, clip, _ = tiny("flux")
    tokens = comfy_env.pack.nodes._prompt_tokens
    with torch.inference_mode():
        encoded = tokens.encode_quality_conditionings(clip, PROMPT, "A high-quality image of {p}.",
                                                      "A low-quality image of {p}.")
    for _, weights in encoded:
        assert int((weights > 0).sum()) >= len(PROMPT.split()) and abs(float(weights.sum()) - 1.0) < 1e-5


def test_sd3_weights_sit_on_the_prompt_in_both_clip_and_t5(comfy_env):
    """SD3's conditioning is CLIP-L/G's 77 tokens then T5's: the prompt is located in each, half the weight each
    (ComfyUI's real SD3 tokenizer; the stand-in CLIP exposes only the tokenizer the weights read)."""
    from types import SimpleNamespace

    import comfy.text_encoders.sd3_clip as sd3_clip

    tokenizer = sd3_clip.SD3Tokenizer()
    clip = SimpleNamespace(tokenizer=tokenizer, tokenize=lambda text, return_word_ids=False:
                           tokenizer.tokenize_with_weights(text, return_word_ids))
    text = f"A high-quality image of {PROMPT}."
    streams = clip.tokenize(text)
    n_clip, n_t5 = len(streams["l"][0]), sum(len(c) for c in streams["t5xxl"])
    weights = comfy_env.pack.nodes._prompt_tokens.content_token_weights(clip, text, PROMPT, n_clip + n_t5)
    assert weights.shape == (n_clip + n_t5,) and abs(float(weights.sum()) - 1.0) < 1e-5
    for part, ids, inner in ((weights[:n_clip], [t[0] for t in streams["l"][0]], tokenizer.clip_l.tokenizer),
                             (weights[n_clip:], [t[0] for c in streams["t5xxl"] for t in c], tokenizer.t5xxl.tokenizer)):
        positions = torch.nonzero(part).flatten().tolist()
        assert abs(float(part.sum()) - 0.5) < 1e-5
        picked = inner.decode([ids[p] for p in positions])
        assert picked.replace("</w>", " ").split() == PROMPT.split(), picked
