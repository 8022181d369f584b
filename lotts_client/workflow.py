"""ComfyUI workflow formats: API ("prompt") graphs, UI (litegraph) graphs, and checks against /object_info.

* API format: ``{node_id: {"class_type": ..., "inputs": {name: literal or [source_id, slot]}, "_meta": {"title"}}}``,
  what ``POST /prompt`` takes. The pack's workflows/api/*.json are written in it (the source of truth).
* UI format: the litegraph document the front end loads and saves (``nodes``, ``links``, ``version`` 0.4).
  Widget values are positional, in the node definition's input order, and seed widgets carry an extra
  "control after generate" value; so converting needs the server's /object_info.

stdlib only: used by the command-line client, workflows/build_ui.py and the tests.
"""

import json
import math
import uuid

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
SEED_NAMES = ("seed", "noise_seed")
#: Front-end-only node types: they exist in UI files but never in API graphs.
VIRTUAL_TYPES = ("Note", "MarkdownNote")
#: Literal combo values that name a model file are not checked against the server's file list.
MODEL_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx")
CONTROL_DEFAULT = "fixed"
# Layout of generated UI graphs (pixels).
COLUMN_GAP, ROW_GAP, MARGIN = 60, 40, 40
SLOT_HEIGHT, WIDGET_HEIGHT, MULTILINE_HEIGHT, NODE_PADDING = 20, 24, 78, 14


class WorkflowError(ValueError):
    """A graph is malformed or does not match the server's node definitions."""


# -- node definitions (/object_info) ----------------------------------------------------------------------------

class InputSpec:
    """One input of a node definition: its type, options and whether the UI shows it as a widget."""

    def __init__(self, name, spec, optional):
        self.name = name
        self.optional = optional
        raw_type = spec[0] if spec else "*"
        self.options = dict(spec[1]) if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if isinstance(raw_type, list):
            self.type, self.choices = "COMBO", list(raw_type)
        elif raw_type == "COMBO":
            self.type, self.choices = "COMBO", list(self.options.get("options", []))
        else:
            self.type, self.choices = raw_type, None

    @property
    def is_widget(self):
        return self.type in WIDGET_TYPES and not self.options.get("forceInput") and not self.options.get("rawLink")

    @property
    def has_control(self):
        """Whether the front end adds a 'control after generate' widget (value stored right after it)."""
        control = self.options.get("control_after_generate")
        if control is None:
            control = self.type == "INT" and self.name in SEED_NAMES
        return bool(control) and self.type in ("INT", "COMBO")

    @property
    def multiline(self):
        return self.type == "STRING" and bool(self.options.get("multiline"))

    def default(self):
        if "default" in self.options:
            return self.options["default"]
        if self.type == "COMBO":
            return self.choices[0] if self.choices else None
        return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(self.type)


class NodeSpec:
    def __init__(self, class_type, info):
        self.class_type = class_type
        self.info = info
        inputs = info.get("input", {})
        order = info.get("input_order", {})
        self.inputs = {}
        for section in ("required", "optional"):
            specs = inputs.get(section, {}) or {}
            for name in order.get(section, list(specs)):
                if name in specs:
                    self.inputs[name] = InputSpec(name, specs[name], section == "optional")
        self.outputs = list(info.get("output", []))
        self.output_names = list(info.get("output_name", self.outputs))
        self.output_node = bool(info.get("output_node"))
        self.display_name = info.get("display_name") or class_type

    @property
    def widgets(self):
        return [spec for spec in self.inputs.values() if spec.is_widget]


def node_specs(object_info):
    return {name: NodeSpec(name, info) for name, info in object_info.items()}


def _spec(specs, class_type):
    if class_type not in specs:
        raise WorkflowError(f"node type {class_type!r} is not known to the server (missing custom node?)")
    return specs[class_type]


def is_link(value):
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int) and not isinstance(value[1], bool))


def types_compatible(output_type, input_type):
    if "*" in (output_type, input_type):
        return True
    received = {t.strip() for t in str(output_type).split(",")}
    wanted = {t.strip() for t in str(input_type).split(",")}
    return bool(received & wanted)


def looks_like_model_file(value):
    return isinstance(value, str) and value.lower().endswith(MODEL_FILE_SUFFIXES)


# -- validation -------------------------------------------------------------------------------------------------

def validate_api(graph, object_info, pending=None):
    """Problems (strings) that the server would reject or that make the graph misleading; [] when valid.

    `pending`: {class_type: [output types]} of node types that are expected but not (yet) registered; their
    own inputs are not checked, but links out of them are checked against the given output types.
    """
    specs = node_specs(object_info)
    pending = dict(pending or {})
    problems = []
    if not isinstance(graph, dict) or not graph:
        return ["the graph must be a non-empty JSON object {node_id: node}"]
    has_output = False
    for node_id, node in graph.items():
        where = f"node {node_id}"
        if not isinstance(node, dict) or "class_type" not in node or not isinstance(node.get("inputs"), dict):
            problems.append(f"{where}: needs 'class_type' and an 'inputs' object")
            continue
        class_type = node["class_type"]
        where = f"node {node_id} ({class_type})"
        if class_type in specs:
            spec = specs[class_type]
        elif class_type in pending:
            continue
        else:
            problems.append(f"{where}: node type is not registered on the server")
            continue
        has_output = has_output or spec.output_node
        for name, input_spec in spec.inputs.items():
            if not input_spec.optional and name not in node["inputs"]:
                problems.append(f"{where}: required input {name!r} is missing")
        for name, value in node["inputs"].items():
            if name not in spec.inputs:
                moved = _moved_to(specs, spec, name)
                problems.append(f"{where}: has no input named {name!r} " + (
                    f"(it moved to {moved}; connect one to this node's 'options')" if moved
                    else f"(known: {', '.join(spec.inputs)})"))
                continue
            problems.extend(_check_input(graph, specs, pending, where, spec.inputs[name], value))
    if not has_output:
        problems.append("the graph has no output node (SaveImage, PreviewImage, SaveLatent, PreviewAny, ...)")
    cycle = _find_cycle(graph)
    if cycle:
        problems.append(f"the graph has a cycle through nodes {cycle}")
    return problems


def _moved_to(specs, spec, name):
    """The node type an unknown input moved to: one whose output feeds a socket of this node and that has the input
    (LoTTS Search's options went to LoTTS Search Options); None if there is none."""
    sockets = {s.type for s in spec.inputs.values() if not s.is_widget}
    for other in specs.values():
        if name in other.inputs and sockets & set(other.outputs):
            return other.info.get("display_name") or other.class_type
    return None


def _check_input(graph, specs, pending, where, input_spec, value):
    name = input_spec.name
    if is_link(value):
        source_id, slot = value
        if source_id not in graph:
            return [f"{where}: input {name!r} links to missing node {source_id}"]
        source_type = graph[source_id].get("class_type")
        if source_type in specs:
            outputs = specs[source_type].outputs
        elif source_type in pending:
            outputs = pending[source_type]
        else:
            return []  # reported on the source node itself
        if not 0 <= slot < len(outputs):
            return [f"{where}: input {name!r} links to output {slot} of node {source_id} ({source_type}), "
                    f"which has {len(outputs)} outputs"]
        if not types_compatible(outputs[slot], input_spec.type):
            return [f"{where}: input {name!r} expects {input_spec.type} but node {source_id} ({source_type}) "
                    f"output {slot} is {outputs[slot]}"]
        return []
    kind, options = input_spec.type, input_spec.options
    if kind == "COMBO":
        if value in input_spec.choices or looks_like_model_file(value):
            return []  # model files differ between machines: the server lists only what it has
        return [f"{where}: {name!r} = {value!r} is not one of {input_spec.choices[:12]}"]
    if kind == "INT":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: {name!r} must be an integer, got {value!r}"]
    elif kind == "FLOAT":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return [f"{where}: {name!r} must be a number, got {value!r}"]
    elif kind == "BOOLEAN":
        if not isinstance(value, bool):
            return [f"{where}: {name!r} must be true or false, got {value!r}"]
        return []
    elif kind == "STRING":
        return [] if isinstance(value, str) else [f"{where}: {name!r} must be a string, got {value!r}"]
    else:
        return [f"{where}: input {name!r} of type {kind} must be linked to another node's output"]
    if "min" in options and value < options["min"]:
        return [f"{where}: {name!r} = {value} is below the minimum {options['min']}"]
    if "max" in options and value > options["max"]:
        return [f"{where}: {name!r} = {value} is above the maximum {options['max']}"]
    return []


def _find_cycle(graph):
    state = {}

    def visit(node_id, path):
        state[node_id] = 1
        for value in graph[node_id].get("inputs", {}).values():
            if is_link(value) and value[0] in graph:
                if state.get(value[0]) == 1:
                    return path + [value[0]]
                if value[0] not in state:
                    found = visit(value[0], path + [value[0]])
                    if found:
                        return found
        state[node_id] = 2
        return None

    for node_id in graph:
        if node_id not in state and isinstance(graph[node_id], dict):
            found = visit(node_id, [node_id])
            if found:
                return found
    return None


# -- API -> UI --------------------------------------------------------------------------------------------------

def _depths(graph):
    depth = {}

    def of(node_id, seen=()):
        if node_id in depth:
            return depth[node_id]
        sources = [v[0] for v in graph[node_id]["inputs"].values() if is_link(v) and v[0] in graph]
        depth[node_id] = 1 + max((of(s, seen + (node_id,)) for s in sources if s not in seen), default=-1)
        return depth[node_id]

    for node_id in graph:
        of(node_id)
    return depth


def _node_size(spec, class_type):
    if class_type in ("SaveImage", "PreviewImage"):
        return [320, 300]
    if class_type == "PreviewAny":  # the front end adds a text box for the value
        return [320, 160]
    links = [s for s in spec.inputs.values() if not s.is_widget]
    rows = max(len(links), len(spec.outputs), 1)
    height = rows * SLOT_HEIGHT + NODE_PADDING
    for widget in spec.widgets:
        height += MULTILINE_HEIGHT if widget.multiline else WIDGET_HEIGHT
        if widget.has_control:
            height += WIDGET_HEIGHT
    wide = any(w.type == "STRING" for w in spec.widgets) or len(spec.outputs) > 3
    return [400 if wide else 320, height]


def _sort_key(node_id):
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def api_to_ui(graph, object_info, notes=(), workflow_id=None, stand_ins=None, wrap_columns=None):
    """The UI (litegraph) document of an API graph, laid out left to right by depth.

    `object_info`: the server's /object_info (widget order, socket types, display names).
    `notes`: [(title, markdown)] shown as MarkdownNote nodes above the graph (UI only).
    `stand_ins`: extra /object_info entries for node types the server does not register yet.
    `wrap_columns`: start a new band below after this many depth columns (long pipelines stay readable).
    """
    specs = node_specs({**(stand_ins or {}), **object_info})
    for node_id in graph:
        if not str(node_id).isdigit():
            raise WorkflowError(f"node id {node_id!r}: UI graphs need integer node ids")
    depth = _depths(graph)
    columns = {}
    for node_id in sorted(graph, key=_sort_key):
        columns.setdefault(depth[node_id], []).append(node_id)

    # links: one per linked input, numbered in (target id, input order)
    links, link_of_input, links_of_output = [], {}, {}
    for node_id in sorted(graph, key=_sort_key):
        node = graph[node_id]
        spec = _spec(specs, node["class_type"])
        names = list(spec.inputs)
        for name in sorted(node["inputs"], key=lambda n: names.index(n) if n in names else len(names)):
            value = node["inputs"][name]
            if not is_link(value):
                continue
            source, slot = value
            source_spec = _spec(specs, graph[source]["class_type"])
            link_id = len(links) + 1
            target_slot = _ui_inputs(spec, node).index(name)
            links.append([link_id, int(source), slot, int(node_id), target_slot, source_spec.outputs[slot]])
            link_of_input[(node_id, name)] = link_id
            links_of_output.setdefault((source, slot), []).append(link_id)

    sizes = {node_id: _node_size(_spec(specs, graph[node_id]["class_type"]), graph[node_id]["class_type"])
             for node_id in graph}
    positions, x = {}, MARGIN
    top = MARGIN + (220 if notes else 0)
    band_bottom = top
    consumers = {}
    for node_id, node in graph.items():
        for value in node["inputs"].values():
            if is_link(value):
                consumers.setdefault(value[0], set()).add(node_id)
    for index, column in enumerate(sorted(columns)):
        if wrap_columns and index and index % wrap_columns == 0:  # start a new band of columns below
            x, top = MARGIN, band_bottom + 2 * ROW_GAP
        width = max(sizes[n][0] for n in columns[column])
        y = top

        def placement(node_id):
            """Main-line nodes first, in the order of their highest source; leaves (outputs) last."""
            sources = [positions[v[0]][1] + sizes[v[0]][1] / 2 for v in graph[node_id]["inputs"].values()
                       if is_link(v) and v[0] in positions]
            return (node_id not in consumers, min(sources, default=0), _sort_key(node_id))

        for node_id in sorted(columns[column], key=placement):
            positions[node_id] = [x, y]
            y += sizes[node_id][1] + ROW_GAP
        band_bottom = max(band_bottom, y)
        x += width + COLUMN_GAP

    nodes = []
    order = sorted(graph, key=lambda n: (depth[n], _sort_key(n)))
    for node_id in sorted(graph, key=_sort_key):
        node = graph[node_id]
        spec = _spec(specs, node["class_type"])
        ui_inputs = []
        for name in _ui_inputs(spec, node):
            input_spec = spec.inputs.get(name)
            entry = {"localized_name": name, "name": name,
                     "type": input_spec.type if input_spec else "*"}
            if input_spec is not None and input_spec.optional:
                entry["shape"] = 7
            if input_spec is not None and input_spec.is_widget:
                entry["widget"] = {"name": name}
            entry["link"] = link_of_input.get((node_id, name))
            ui_inputs.append(entry)
        outputs = []
        for slot, output_type in enumerate(spec.outputs):
            name = spec.output_names[slot] if slot < len(spec.output_names) else output_type
            outputs.append({"localized_name": name, "name": name, "type": output_type,
                            "links": links_of_output.get((node_id, slot)) or None})
        entry = {"id": int(node_id), "type": node["class_type"], "pos": positions[node_id], "size": sizes[node_id],
                 "flags": {}, "order": order.index(node_id), "mode": 0, "inputs": ui_inputs, "outputs": outputs,
                 "properties": {"Node name for S&R": node["class_type"]},
                 "widgets_values": widget_values(spec, node)}
        title = node.get("_meta", {}).get("title")
        if title and title != spec.display_name:
            entry["title"] = title
        nodes.append(entry)
    next_id = max(int(n) for n in graph) + 1
    for index, (title, text) in enumerate(notes):
        nodes.append({"id": next_id + index, "type": "MarkdownNote", "pos": [MARGIN + index * 520, MARGIN],
                      "size": [500, 180], "flags": {}, "order": len(nodes), "mode": 0, "inputs": [], "outputs": [],
                      "title": title, "properties": {}, "widgets_values": [text], "color": "#432",
                      "bgcolor": "#653"})
    return {"id": workflow_id or str(uuid.uuid4()), "revision": 0,
            "last_node_id": max(n["id"] for n in nodes), "last_link_id": len(links), "nodes": nodes,
            "links": links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}, "frontendVersion": "1.32.9"}, "version": 0.4}


def _ui_inputs(spec, node):
    """The node's UI input slots as the front end serializes them: every socket input, then every widget
    input (widgets have sockets too, so they can be linked)."""
    sockets = [n for n, s in spec.inputs.items() if not s.is_widget]
    widgets = [n for n, s in spec.inputs.items() if s.is_widget]
    return sockets + widgets


def widget_values(spec, node):
    values = []
    for widget in spec.widgets:
        value = node["inputs"].get(widget.name, widget.default())
        if is_link(value):
            value = widget.default()
        values.append(value)
        if widget.has_control:
            values.append(CONTROL_DEFAULT)
    return values


# -- UI -> API --------------------------------------------------------------------------------------------------

def ui_to_api(document, object_info):
    """The API graph of a UI document (what the front end's 'Export (API)' gives) for plain graphs:
    nodes, links and widgets; notes are dropped. Muted nodes are left out; bypassed nodes, reroutes,
    primitive nodes and subgraphs are refused with a clear error (open and re-export in ComfyUI)."""
    specs = node_specs(object_info)
    links = {}
    for link in document.get("links", []):
        if isinstance(link, dict):
            links[link["id"]] = (link["origin_id"], link["origin_slot"])
        else:
            links[link[0]] = (link[1], link[2])
    graph = {}
    for node in sorted(document.get("nodes", []), key=lambda n: n["id"]):
        class_type = node["type"]
        if class_type in VIRTUAL_TYPES or node.get("mode") == 2:
            continue
        if node.get("mode") == 4 or class_type in ("Reroute", "PrimitiveNode") or "subgraph" in str(class_type):
            raise WorkflowError(f"node {node['id']} ({class_type}): bypassed nodes, reroutes, primitive nodes and "
                                "subgraphs are not converted here; use 'Export (API)' in ComfyUI")
        spec = _spec(specs, class_type)
        inputs = {}
        values = list(node.get("widgets_values") or [])
        if isinstance(node.get("widgets_values"), dict):
            raise WorkflowError(f"node {node['id']} ({class_type}): named widget values are not supported")
        position = 0
        for widget in spec.widgets:
            if position >= len(values):
                break
            inputs[widget.name] = values[position]
            position += 2 if widget.has_control else 1
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                origin_id, origin_slot = links[slot["link"]]
                inputs[slot.get("widget", {}).get("name", slot["name"])] = [str(origin_id), origin_slot]
        entry = {"inputs": inputs, "class_type": class_type}
        entry["_meta"] = {"title": node.get("title") or spec.display_name}
        graph[str(node["id"])] = entry
    return graph


def ordered_api(graph, object_info):
    """The graph with each node's inputs in the definition's order (for stable comparisons and files)."""
    specs = node_specs(object_info)
    out = {}
    for node_id in sorted(graph, key=_sort_key):
        node = graph[node_id]
        names = list(specs[node["class_type"]].inputs) if node["class_type"] in specs else []
        inputs = {name: node["inputs"][name] for name in sorted(
            node["inputs"], key=lambda n: names.index(n) if n in names else len(names))}
        out[node_id] = {"inputs": inputs, "class_type": node["class_type"], **(
            {"_meta": node["_meta"]} if "_meta" in node else {})}
    return out


def dumps(document):
    """The repository's JSON style for workflow files: 2-space indent, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
