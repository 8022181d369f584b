"""Every UI workflow loads in the real ComfyUI front end with all its nodes known, and the front end turns it
back into the API graph shipped beside it (workflows/api/). A screenshot of the pipeline goes to the README
(written to docs/images/ui_pipeline.png when LOTTS_UPDATE_SCREENSHOT=1)."""

import json
import os
import shutil
import struct
import time

import harness
import pytest
from cdp import Browser

WORKFLOWS = harness.REPO / "workflows"
SCREENSHOT = harness.REPO / "docs" / "images" / "ui_pipeline.png"
#: Node types that ship from other parts of the pack and may not be registered yet on a given checkout.
PENDING = {"LoTTSDemoModelLoader"}
#: Widgets the front end adds to some core nodes (not part of the node definition).
FRONTEND_ONLY_INPUTS = {"PreviewAny": {"preview"}}

pytestmark = [pytest.mark.server, pytest.mark.slow]

# no first-run template browser, no minimap or canvas info, full-detail nodes even when zoomed out
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False, "Comfy.Graph.CanvasInfo": False,
            "LiteGraph.Canvas.MinFontSizeForLOD": 0}
WIDTH, HEIGHT = 2600, 1100
BEFORE_LOAD = "localStorage.setItem('vueNodesBannerDismissed', 'true');"

STATE = """(() => {
  const registered = window.LiteGraph.registered_node_types;
  const nodes = window.app.graph.nodes.map(n => ({id: n.id, type: n.type, known: n.type in registered,
                                                  errors: Boolean(n.has_errors), title: n.title}));
  const text = document.body.innerText || "";
  return {nodes, missingDialog: /missing nodes/i.test(text), links: Object.keys(window.app.graph.links || {}).length};
})()"""

FIT_VIEW = """(() => {
  const canvas = window.app.canvas, nodes = window.app.graph.nodes, pad = 40;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const n of nodes) {
    x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 30);
    x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
  }
  const rect = canvas.canvas.getBoundingClientRect();
  const top = 90, left = 60;  // keep clear of the top bar and the side bar
  const w = rect.width - left, h = rect.height - top;
  const scale = Math.min(w / (x1 - x0 + 2 * pad), h / (y1 - y0 + 2 * pad));
  canvas.ds.scale = scale;
  canvas.ds.offset = [left / scale - x0 + pad + (w / scale - (x1 - x0 + 2 * pad)) / 2,
                      top / scale - y0 + pad + (h / scale - (y1 - y0 + 2 * pad)) / 2];
  canvas.setDirty(true, true);
  canvas.draw(true, true);
  const sx = v => (v + canvas.ds.offset[0]) * scale + rect.left, sy = v => (v + canvas.ds.offset[1]) * scale + rect.top;
  const clip = {x: Math.max(0, sx(x0 - pad / 2)), y: Math.max(0, sy(y0 - pad / 2))};
  clip.width = Math.min(rect.right, sx(x1 + pad / 2)) - clip.x;
  clip.height = Math.min(rect.bottom, sy(y1 + pad / 2)) - clip.y;
  return {scale, clip};
})()"""


def close_dialogs(browser):
    browser.evaluate("""(() => {
      for (const b of document.querySelectorAll('.p-dialog-close-button, [aria-label="Close"]')) b.click();
      return true; })()""")


def png_size(path):
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="module")
def page(ui_server):
    for key, value in SETTINGS.items():
        status, _ = ui_server.post(f"/settings/{key}", value)
        assert status == 200
    with Browser(width=WIDTH, height=HEIGHT) as browser:
        browser.call("Page.addScriptToEvaluateOnNewDocument", source=BEFORE_LOAD)
        browser.open(ui_server.url + "/", timeout=120)
        browser.wait_for("window.app && window.app.graph && window.app.canvas && window.LiteGraph && "
                         "'LoTTSSearch' in window.LiteGraph.registered_node_types", timeout=120)
        close_dialogs(browser)
        yield browser


def files_not_on_server(api, object_info):
    """Ids of nodes with a file-name input (a combo) whose value the server does not list: a model not installed."""
    out = set()
    for node_id, node in api.items():
        spec = object_info.get(node["class_type"], {}).get("input", {})
        options = {**spec.get("required", {}), **spec.get("optional", {})}
        for key, value in node["inputs"].items():
            choices = options.get(key, [None])[0]
            if isinstance(choices, list) and isinstance(value, str) and value not in choices:
                out.add(node_id)
    return out


def load(page, document, name, attempts=3):
    """Load a workflow and return the front end's state. The front end may still be opening its own default
    workflow just after start-up and replace ours (seen once in CI on 0.33): when the graph on the canvas is not
    the one loaded (other node ids), load again; a workflow that fails to load fails every attempt."""
    wanted = sorted(str(n["id"]) for n in document["nodes"])
    for attempt in range(attempts):
        close_dialogs(page)
        page.evaluate(f"(async () => {{ await window.app.loadGraphData({json.dumps(document)}, true, true, "
                      f"{json.dumps(name)}); return true; }})()", timeout=60)
        time.sleep(0.3)  # let the dialog service render
        state = page.evaluate(STATE)
        if sorted(str(n["id"]) for n in state["nodes"]) == wanted:
            return state
        time.sleep(1.0 + attempt)
    return state


@pytest.mark.parametrize("name", sorted(p.stem for p in WORKFLOWS.glob("*.json")))
def test_ui_workflow_loads_with_every_node_known(page, ui_server, name):
    document = json.loads((WORKFLOWS / f"{name}.json").read_text())
    api = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    server_types = set(ui_server.get("/object_info"))
    pending = {n["class_type"] for n in api.values()} & PENDING - server_types
    state = load(page, document, name)
    assert len(state["nodes"]) == len(document["nodes"])
    assert state["links"] == len(document["links"])
    unknown = {n["type"] for n in state["nodes"] if not n["known"]}
    assert unknown == pending, f"{name}: nodes the front end does not know: {sorted(unknown - pending)}"
    # newer front ends (1.49) also flag a loader whose model file is not on this server: allowed, nothing else is
    missing_files = files_not_on_server(api, ui_server.get("/object_info"))
    flagged = {str(n["id"]) for n in state["nodes"] if n["known"] and n["errors"]}
    assert flagged <= missing_files, f"{name}: nodes with errors: {sorted(flagged - missing_files)}"
    if not pending:
        assert not state["missingDialog"], f"{name}: the front end reports missing nodes"
    if pending:
        return  # the front end cannot export nodes it does not know
    # the front end's own UI -> API conversion gives back the shipped API graph
    exported = page.evaluate("(async () => (await window.app.graphToPrompt()).output)()")
    assert set(exported) == set(api), f"{name}: node ids differ"
    for node_id, node in api.items():
        got = exported[node_id]
        assert got["class_type"] == node["class_type"]
        extra = FRONTEND_ONLY_INPUTS.get(node["class_type"], set())
        assert {k: v for k, v in got["inputs"].items() if k not in extra} == node["inputs"], f"{name}: node {node_id}"
        assert got.get("_meta", {}).get("title") == node["_meta"]["title"]


def test_pipeline_screenshot(page, ui_server, tmp_path):
    document = json.loads((WORKFLOWS / "lotts_demo_pipeline.json").read_text())
    state = load(page, document, "lotts_demo_pipeline")
    close_dialogs(page)
    page.evaluate(FIT_VIEW)
    time.sleep(0.5)  # let the canvas redraw at the new scale
    view = page.evaluate(FIT_VIEW)
    shot = page.screenshot(str(tmp_path / "ui_pipeline.png"), clip=view["clip"])
    width, height = png_size(shot)
    assert view["scale"] > 0.3 and width > 1500 and height > 300 and os.path.getsize(shot) > 50_000
    if os.environ.get("LOTTS_UPDATE_SCREENSHOT") == "1":
        assert not any(n["errors"] for n in state["nodes"]), "refusing to publish a screenshot with missing nodes"
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
