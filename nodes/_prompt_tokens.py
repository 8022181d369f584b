"""Conditionings for the three quality prompts and which of their tokens carry the prompt's content."""

import torch

DEFAULT_HIGH_TEMPLATE = "A high-quality image of {p}."
DEFAULT_LOW_TEMPLATE = "A low-quality image of {p}."


def fill_template(template, prompt, input_name):
    if "{p}" not in template:
        raise ValueError(f"{input_name}: the template must contain {{p}} where the prompt goes, got {template!r}")
    return template.replace("{p}", prompt)


def _flat_tokens(token_chunks):
    """[(id, weight, word_id), ...] over all 77-token chunks -> ids, is_content flags. Tokenizers that give
    (id, weight) pairs only (LongCat-Image) mark nothing as template: every token counts as content."""
    ids, content = [], []
    for chunk in token_chunks:
        for token in chunk:
            token_id, word_id = token[0], (token[2] if len(token) > 2 else 1)
            ids.append(token_id if isinstance(token_id, int) else -1)  # embeddings are content too
            content.append(word_id != 0)
    return ids, content


def _find_run(haystack, needle):
    for start in range(len(haystack) - len(needle) + 1):
        if haystack[start:start + len(needle)] == needle:
            return start
    return -1


def _find_last_run(haystack, needle):
    for start in range(len(haystack) - len(needle), -1, -1):
        if haystack[start:start + len(needle)] == needle:
            return start
    return -1


def _positions_by_ids(clip, key, ids, prompt):
    """Positions of the prompt's tokens in a stream whose word ids do not single it out (Qwen, Mistral, Gemma text
    encoders wrap every text in a system / user template; SentencePiece streams flag the whole text as one word):
    the last run of the prompt's own ids, tokenized alone, with or without a leading space (BPE and SentencePiece
    spell a word differently after a space). None when the run is not found."""
    inner = getattr(clip.tokenizer, key, None)
    tokenize = getattr(inner, "tokenizer", None)
    if tokenize is None:
        return None
    specials = {getattr(inner, "start_token", None), getattr(inner, "end_token", None),
                getattr(inner, "pad_token", None)}
    for variant in (" " + prompt, prompt):
        needle = [i for i in tokenize(variant)["input_ids"] if i not in specials]
        start = _find_last_run(ids, needle) if needle else -1
        if start >= 0:
            return list(range(start, start + len(needle)))
    return None


def content_token_weights(clip, text, prompt, n_tokens):
    """(n_tokens,) weights, uniform over the tokens of `prompt` inside `text` (BOS/EOS/padding and the
    template words excluded). The stream used is the tokenizer output whose length matches the
    conditioning, so SDXL (l/g), SD1/2 and FLUX (T5) all map token positions correctly; SD3's conditioning is
    CLIP's 77 tokens then T5's, and gets both, half the weight each. Chat-templated encoders are matched by token
    ids; one that drops the template's start from its output (Qwen-Image) gives a conditioning shorter than the
    stream, and positions shift by the difference."""
    full = clip.tokenize(text, return_word_ids=True)
    lengths = {k: sum(len(c) for c in chunks) for k, chunks in full.items()}
    # HunyuanImage's ByT5 glyph stream is its own conditioning, never the one these weights are for
    key = next((k for k, n in lengths.items() if n == n_tokens and k != "byt5"), None)
    if key is None and "t5xxl" in lengths:
        clip_key = next((k for k in ("l", "g") if lengths.get(k, 0) + lengths["t5xxl"] == n_tokens), None)
        if clip_key is not None:
            return torch.cat([_stream_weights(clip, full, clip_key, prompt, lengths[clip_key]),
                              _stream_weights(clip, full, "t5xxl", prompt, lengths["t5xxl"])]) / 2
    return _stream_weights(clip, full, key if key is not None else next(iter(full)), prompt, n_tokens)


def _dropped_template_start(clip, key, ids, n_tokens):
    """Tokens the encoder cuts from the front of the stream: LongCat-Image cuts its whole fixed prefix (and its
    suffix from the end), Qwen-Image the template's start (the rest of the difference)."""
    prefix = getattr(clip.tokenizer, "T2I_PREFIX", None)
    inner = getattr(getattr(clip.tokenizer, key, None), "tokenizer", None)
    if prefix is not None and inner is not None:
        return len(inner(prefix, add_special_tokens=False)["input_ids"])
    return max(0, len(ids) - n_tokens)


def _stream_weights(clip, full, key, prompt, n_tokens):
    ids, content = _flat_tokens(full[key])
    templated = getattr(clip.tokenizer, "llama_template", None) is not None or hasattr(clip.tokenizer, "T2I_PREFIX")
    if templated:
        positions = _positions_by_ids(clip, key, ids, prompt)
        if positions is not None:
            dropped = _dropped_template_start(clip, key, ids, n_tokens)
            positions = [p - dropped for p in positions if 0 <= p - dropped < n_tokens]
            if positions:
                weights = torch.zeros(n_tokens)
                weights[positions] = 1.0 / len(positions)
                return weights
    alone = clip.tokenize(prompt, return_word_ids=True)
    prompt_ids, prompt_content = _flat_tokens(alone[key])
    prompt_ids = [i for i, c in zip(prompt_ids, prompt_content, strict=True) if c]
    positions = [i for i, c in enumerate(content) if c]
    content_ids = [ids[i] for i in positions]
    start = _find_run(content_ids, prompt_ids) if prompt_ids else -1
    if start >= 0:
        positions = positions[start:start + len(prompt_ids)]
    elif not templated:  # the prompt alone is spelled otherwise after the template's words (Gemma): by ids
        positions = _positions_by_ids(clip, key, ids, prompt) or positions
    weights = torch.zeros(n_tokens)
    positions = [p for p in positions if p < n_tokens]
    if not positions:
        raise ValueError("prompt: has no tokens after tokenization; give the prompt the candidates were made from")
    weights[positions] = 1.0 / len(positions)
    return weights


def with_llama_streams(clip, text, prompt, t5_weights, n_llama):
    """HiDream's attention reads, after T5's tokens, the Llama stream twice (the last chosen layer's, then the
    block's own layer's): the weights over that whole text, a third on each."""
    llama = _stream_weights(clip, clip.tokenize(text, return_word_ids=True), "llama", prompt, n_llama)
    return torch.cat([t5_weights, llama, llama]) / 3


def encode_quality_conditionings(clip, prompt, high_template, low_template, token_weights=True):
    """[(conditioning, token_weights)] for the original, high-quality and low-quality prompts. The weights are
    for the attention signal only; token_weights=False leaves them None (the noise difference reads no tokens)."""
    if clip is None:
        raise ValueError("clip: no CLIP connected (a checkpoint without a text encoder gives None); "
                         "connect a CLIP loader")
    prompt = (prompt or "").strip()
    if not prompt:
        raise ValueError("prompt: is empty; LoTTS contrasts the prompt wrapped in the quality templates")
    texts = [prompt, fill_template(high_template, prompt, "high_quality_template"),
             fill_template(low_template, prompt, "low_quality_template")]
    encoded = []
    for text in texts:
        tokens = clip.tokenize(text)
        conditioning = clip.encode_from_tokens_scheduled(tokens)
        n_tokens = conditioning[0][0].shape[1]
        weights = content_token_weights(clip, text, prompt, n_tokens) if token_weights else None
        llama = conditioning[0][1].get("conditioning_llama3")
        if weights is not None and llama is not None:
            weights = with_llama_streams(clip, text, prompt, weights, llama.shape[-2])
        encoded.append((conditioning, weights))
    return encoded
