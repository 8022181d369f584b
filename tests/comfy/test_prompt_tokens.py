"""The prompt's own tokens located inside chat templates, with the real tokenizers ComfyUI bundles (Qwen2.5 / Qwen3's
BPE, used by Qwen-Image, Z-Image, FLUX.2 Klein, LongCat-Image and HunyuanImage 2.1; HiDream's T5 and Llama 3), and
Mistral's tekken tokenizer (FLUX.2 dev) and Gemma 2's SentencePiece (Lumina 2) with vocabularies built here: theirs
ship inside the model files, not with ComfyUI, so the real ones cannot be loaded here."""

from types import SimpleNamespace

import pytest
import torch

PROMPT = "a red cube on a wooden table"
TEMPLATED = ("zimage", "qwen_image", "flux2", "longcat_image", "hunyuan_image21", "mage_flow", "krea2", "joyimage")
DROPS_TEMPLATE_START = ("qwen_image", "longcat_image", "hunyuan_image21", "mage_flow", "krea2", "joyimage")  # the encoder cuts it from its output


@pytest.fixture(params=TEMPLATED)
def templated(request, comfy_env):
    specs = comfy_env.test_pack.tiny_models.FAMILY_SPECS
    if request.param not in specs:
        pytest.skip(f"{request.param}: {comfy_env.test_pack.tiny_models.UNAVAILABLE[request.param]}")
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
        assert dropped >= 0 and (dropped > 0) == (family in DROPS_TEMPLATE_START)
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


def test_hidream_weights_sit_on_the_prompt_in_t5_and_both_llama_streams(comfy_env):
    """HiDream's attention reads T5's 128 tokens, then the Llama stream twice (the last chosen layer's, then the block's
    own): a third of the weight on the prompt in each (ComfyUI's real T5 and Llama 3 tokenizers)."""
    tiny_models = comfy_env.test_pack.tiny_models
    if "hidream" not in tiny_models.FAMILY_SPECS:
        pytest.skip(f"hidream: {tiny_models.UNAVAILABLE['hidream']}")
    _, clip, _ = tiny_models.tiny_family("hidream")
    with torch.inference_mode():
        ((conditioning, weights),) = comfy_env.pack.nodes._prompt_tokens.encode_quality_conditionings(
            clip, PROMPT, "A high-quality image of {p}.", "A low-quality image of {p}.")[1:2]
    text = f"A high-quality image of {PROMPT}."
    streams = clip.tokenize(text)
    n_t5, n_llama = conditioning[0][0].shape[1], conditioning[0][1]["conditioning_llama3"].shape[-2]
    assert weights.shape == (n_t5 + 2 * n_llama,) and abs(float(weights.sum()) - 1.0) < 1e-5
    parts = ((weights[:n_t5], "t5xxl"), (weights[n_t5:n_t5 + n_llama], "llama"), (weights[n_t5 + n_llama:], "llama"))
    for part, key in parts:
        ids = [t[0] for chunk in streams[key] for t in chunk]
        positions = torch.nonzero(part).flatten().tolist()
        assert abs(float(part.sum()) - 1 / 3) < 1e-5
        picked = getattr(clip.tokenizer, key).tokenizer.decode([ids[p] for p in positions])
        # ComfyUI tokenizes word by word, so Llama's BPE ids carry no spaces: compare the letters
        assert picked.replace(" ", "") == PROMPT.replace(" ", ""), (key, picked)


def test_flux2_dev_prompt_is_found_inside_mistrals_template(comfy_env):
    """FLUX.2 dev wraps every prompt in Mistral's [SYSTEM_PROMPT] ... [INST]{}[/INST] template; ComfyUI's own tekken
    tokenizer, given a vocabulary built here, marks every template word as content: the weights must sit on the
    prompt's tokens only."""
    import comfy.text_encoders.flux as flux

    if not hasattr(flux, "Flux2Tokenizer"):
        pytest.skip("this host has no FLUX.2 tokenizer")
    try:
        vocabulary = comfy_env.test_pack.vocabularies.tekken_vocabulary(PROMPT.split() + ["image"])
        tokenizer = flux.Flux2Tokenizer(tokenizer_data={"tekken_model": vocabulary})
    except TypeError as error:  # 0.3.75 converts tekken files through transformers' MistralConverter
        pytest.skip(f"this host cannot build Mistral's tokenizer from a tekken file with this transformers: {error}")
    clip = SimpleNamespace(tokenizer=tokenizer, tokenize=lambda text, return_word_ids=False:
                           tokenizer.tokenize_with_weights(text, return_word_ids))
    inner = tokenizer.mistral3_24b.tokenizer
    for text in (PROMPT, f"A high-quality image of {PROMPT}.", f"{PROMPT}, low quality"):
        ids = [t[0] for t in clip.tokenize(text, return_word_ids=True)["mistral3_24b"][0]]
        weights = comfy_env.pack.nodes._prompt_tokens.content_token_weights(clip, text, PROMPT, len(ids))
        positions = torch.nonzero(weights).flatten().tolist()
        assert positions == list(range(positions[0], positions[-1] + 1)) and abs(float(weights.sum()) - 1) < 1e-5
        assert inner.decode([ids[p] for p in positions]).strip() == PROMPT, text
        assert not {ids[p] for p in positions} & {1, 3, 4, 17, 18}  # no BOS, [INST] or system-prompt tags


def test_lumina2_gemma_prompt_is_found_after_the_templates_words(comfy_env):
    """Lumina 2 reads Gemma 2's SentencePiece stream, which flags the whole text as one word and spells the prompt's
    first word otherwise after a space: the weights must still sit on the prompt only (ComfyUI's own Gemma tokenizer
    class, with a SentencePiece model trained here: the real one ships inside the model file)."""
    import comfy.text_encoders.lumina2 as lumina2
    import sentencepiece

    data = comfy_env.test_pack.vocabularies.gemma_tokenizer_data()
    tokenizer = lumina2.LuminaTokenizer(tokenizer_data=data)
    decoder = sentencepiece.SentencePieceProcessor(model_proto=data["spiece_model"].numpy().tobytes())
    clip = SimpleNamespace(tokenizer=tokenizer, tokenize=lambda text, return_word_ids=False:
                           tokenizer.tokenize_with_weights(text, return_word_ids))
    for text in (PROMPT, f"A high-quality image of {PROMPT}.", f"{PROMPT}, low quality"):
        ids = [t[0] for chunk in clip.tokenize(text)["gemma2_2b"] for t in chunk]
        weights = comfy_env.pack.nodes._prompt_tokens.content_token_weights(clip, text, PROMPT, len(ids))
        positions = torch.nonzero(weights).flatten().tolist()
        assert positions == list(range(positions[0], positions[-1] + 1)) and abs(float(weights.sum()) - 1) < 1e-5
        assert decoder.decode([ids[p] for p in positions]).strip() == PROMPT, text
