"""Change an API graph before submitting it: prompt text, seed, budget, model file, or any input.

Targets are found the way users name things: a node id ("21"), a node title ("Prompt", "LoTTS Search")
or a class name ("KSampler"); titles and classes match case-insensitively and may select several nodes.
Every function returns a new graph and never edits its argument.
"""

import copy
import json
import logging

from .workflow import is_link

log = logging.getLogger("lotts_client")

PROMPT_TITLES = ("prompt", "positive prompt", "positive")
NEGATIVE_TITLES = ("negative prompt", "negative")
SEED_INPUTS = ("seed", "noise_seed")
MODEL_INPUTS = {"CheckpointLoaderSimple": "ckpt_name", "CheckpointLoader": "ckpt_name",
                "UNETLoader": "unet_name", "UnetLoaderGGUF": "unet_name", "ImageOnlyCheckpointLoader": "ckpt_name"}
TEXT_INPUTS = ("value", "text", "prompt", "string")
SEARCH_NODES = ("LoTTSSearch", "LoTTSBestOfN")
OPTIONS_NODE = "LoTTSSearchOptions"
# the search nodes' inputs that live on LoTTS Search Options (a test keeps this equal to the pack's list)
SEARCH_OPTION_INPUTS = frozenset({"mask_mode", "region_threshold", "region_min_area", "region_max_area",
                                  "crop_padding", "region_selection", "nfe_budget", "stop_score", "prune_at_step",
                                  "prune_keep", "capture_mode"})


class OverrideError(ValueError):
    pass


def find_nodes(graph, target):
    """Node ids matching a node id, title or class name (case-insensitive for titles and classes)."""
    target = str(target)
    if target in graph:
        return [target]
    wanted = target.strip().lower()
    by_title = [nid for nid, node in graph.items() if str(node.get("_meta", {}).get("title", "")).lower() == wanted]
    if by_title:
        return by_title
    return [nid for nid, node in graph.items() if str(node.get("class_type", "")).lower() == wanted]


def parse_value(text):
    """'7' -> 7, '0.5' -> 0.5, 'true' -> True, '"x"' -> 'x', anything else stays a string."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def set_input(graph, spec, value=None):
    """`spec` is 'TARGET.INPUT=VALUE' (or 'TARGET.INPUT' with `value`). INPUT may be new on the node only
    if the node has no such literal input yet and the value is explicit; links are never overwritten."""
    graph = copy.deepcopy(graph)
    if value is None:
        if "=" not in spec:
            raise OverrideError(f"--set {spec!r}: expected TARGET.INPUT=VALUE, e.g. 'KSampler.steps=30'")
        spec, raw = spec.split("=", 1)
        value = parse_value(raw)
    if "." not in spec:
        raise OverrideError(f"--set {spec!r}: expected TARGET.INPUT (a node id, title or class, a dot, an input)")
    target, name = spec.rsplit(".", 1)
    ids = find_nodes(graph, target)
    if not ids:
        raise OverrideError(f"--set: no node with id, title or class {target!r} "
                            f"(nodes: {', '.join(_label(graph, n) for n in graph)})")
    for node_id in ids:
        inputs = graph[node_id]["inputs"]
        if graph[node_id].get("class_type") in SEARCH_NODES and name in SEARCH_OPTION_INPUTS:
            inputs = graph[_options_node(graph, node_id)]["inputs"]  # "LoTTS Search.nfe_budget" still works
        if is_link(inputs.get(name)):
            raise OverrideError(f"--set: input {name!r} of {_label(graph, node_id)} is linked to another node; "
                                "set the source node instead")
        inputs[name] = value
    return graph


def _options_node(graph, node_id):
    """The LoTTS Search Options node feeding a search node; a new one (defaults) is added and wired if none is."""
    link = graph[node_id]["inputs"].get("options")
    if is_link(link):
        return str(link[0])
    new_id = str(max((int(n) for n in graph if str(n).isdigit()), default=0) + 1)
    graph[new_id] = {"class_type": OPTIONS_NODE, "inputs": {}, "_meta": {"title": "LoTTS Search Options"}}
    graph[node_id]["inputs"]["options"] = [new_id, 0]
    return new_id


def _label(graph, node_id):
    node = graph[node_id]
    title = node.get("_meta", {}).get("title")
    return f"{node_id}:{node.get('class_type')}" + (f" '{title}'" if title else "")


def _literal_text_input(node):
    for name in TEXT_INPUTS:
        if isinstance(node["inputs"].get(name), str):
            return name
    return None


def set_prompt(graph, text, negative=False):
    """Set the positive (or negative) prompt text.

    1. Nodes titled 'Prompt' / 'Positive Prompt' (or 'Negative Prompt'): their text input.
    2. Otherwise the CLIPTextEncode feeding the samplers' `positive` (`negative`) inputs, and for the positive
       prompt, every literal `prompt` input of LoTTS nodes (the verifier and quality prompts need the text).
    """
    graph = copy.deepcopy(graph)
    titles = NEGATIVE_TITLES if negative else PROMPT_TITLES
    changed = []
    for node_id, node in graph.items():
        if str(node.get("_meta", {}).get("title", "")).strip().lower() in titles:
            name = _literal_text_input(node)
            if name:
                node["inputs"][name] = text
                changed.append(node_id)
    if not changed:
        socket_name = "negative" if negative else "positive"
        for node_id in _encoders_feeding(graph, socket_name):
            graph[node_id]["inputs"]["text"] = text
            changed.append(node_id)
        if not negative:
            for node_id, node in graph.items():
                if isinstance(node["inputs"].get("prompt"), str):
                    node["inputs"]["prompt"] = text
                    changed.append(node_id)
    if not changed:
        raise OverrideError(f"could not find where the {'negative' if negative else 'positive'} prompt goes: title "
                            f"a text node 'Prompt' / 'Negative Prompt', or use --set TARGET.INPUT=TEXT")
    return graph


def _encoders_feeding(graph, socket_name):
    """CLIPTextEncode-like nodes (a literal `text`) upstream of any `socket_name` input, through
    conditioning nodes (FluxGuidance, ConditioningZeroOut, ...)."""
    found, stack, seen = [], [], set()
    for node in graph.values():
        value = node["inputs"].get(socket_name)
        if is_link(value):
            stack.append(value[0])
    while stack:
        node_id = stack.pop()
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        node = graph[node_id]
        if isinstance(node["inputs"].get("text"), str):
            found.append(node_id)
            continue
        for name, value in node["inputs"].items():
            if is_link(value) and name in ("conditioning", "conditioning_1", "conditioning_2", "cond", "positive",
                                           "negative", "conditioning_to", "conditioning_from"):
                stack.append(value[0])
    return sorted(set(found))


def set_seed(graph, seed):
    graph = copy.deepcopy(graph)
    changed = [nid for nid, node in graph.items() for name in SEED_INPUTS
               if isinstance(node["inputs"].get(name), int) and not isinstance(node["inputs"].get(name), bool)]
    if not changed:
        raise OverrideError("--seed: the workflow has no literal 'seed' or 'noise_seed' input")
    for node in graph.values():
        for name in SEED_INPUTS:
            if isinstance(node["inputs"].get(name), int) and not isinstance(node["inputs"].get(name), bool):
                node["inputs"][name] = int(seed)
    return graph


def set_budget(graph, budget):
    """Samples per prompt, the paper's unit: LoTTSBestOfN n = budget; LoTTSSearch keeps k and rounds and
    takes seeds = budget / (1 + k x rounds) (rounded down, at least 1, with a warning when inexact)."""
    graph = copy.deepcopy(graph)
    budget = int(budget)
    if budget < 1:
        raise OverrideError("--budget must be at least 1 sample per prompt")
    changed = False
    for node_id, node in graph.items():
        inputs = node["inputs"]
        if node.get("class_type") == "LoTTSBestOfN" and not is_link(inputs.get("n")):
            inputs["n"] = budget
            changed = True
        elif node.get("class_type") == "LoTTSSearch" and not is_link(inputs.get("seeds")):
            k, rounds = inputs.get("refinements", 2), inputs.get("rounds", 1)
            per_seed = 1 + int(k) * int(rounds)
            seeds = max(1, budget // per_seed)
            if seeds * per_seed != budget:
                log.warning("--budget %d: LoTTSSearch node %s uses %d seeds x (1 + %d x %d) = %d samples per prompt",
                            budget, node_id, seeds, k, rounds, seeds * per_seed)
            inputs["seeds"] = seeds
            changed = True
    if not changed:
        raise OverrideError("--budget: the workflow has no LoTTSSearch or LoTTSBestOfN node")
    return graph


def set_model(graph, filename):
    graph = copy.deepcopy(graph)
    changed = False
    for node in graph.values():
        name = MODEL_INPUTS.get(node.get("class_type"))
        if name and not is_link(node["inputs"].get(name)):
            node["inputs"][name] = filename
            changed = True
    if not changed:
        raise OverrideError("--model: the workflow has no CheckpointLoaderSimple or UNETLoader node")
    return graph


def apply(graph, prompt=None, negative=None, seed=None, budget=None, model=None, sets=()):
    """All overrides in a fixed order: model, prompt, negative, seed, budget, then each --set."""
    if model is not None:
        graph = set_model(graph, model)
    if prompt is not None:
        graph = set_prompt(graph, prompt)
    if negative is not None:
        graph = set_prompt(graph, negative, negative=True)
    if seed is not None:
        graph = set_seed(graph, seed)
    if budget is not None:
        graph = set_budget(graph, budget)
    for spec in sets:
        graph = set_input(graph, spec)
    return graph
