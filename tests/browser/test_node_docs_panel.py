"""The real front end's node-docs panel shows the pack's page for a node (web/docs/<NodeId>.md via
WEB_DIRECTORY). A screenshot goes to docs/images/node_docs_panel.png when LOTTS_UPDATE_SCREENSHOT=1."""

import json
import os
import shutil

import harness
import pytest
from cdp import Browser

SCREENSHOT = harness.REPO / "docs" / "images" / "node_docs_panel.png"
pytestmark = [pytest.mark.server, pytest.mark.slow]

OPEN_HELP = """(async () => {
  const pinia = document.querySelector('#vue-app').__vue_app__.config.globalProperties.$pinia;
  const definition = pinia._s.get('nodeDef').nodeDefsByName[%s];
  await window.app.extensionManager.command.execute('Workspace.ToggleSidebarTab.node-library');
  pinia._s.get('nodeHelp').openHelp(definition);
  return Boolean(definition);
})()"""


@pytest.mark.parametrize("node_id, expected", [("LoTTSSearch", "Settings per family"),
                                               ("LoTTSDefectMask", "area_ratio 0.5 (the paper)")])
def test_node_docs_panel_shows_the_packs_page(ui_server, tmp_path, node_id, expected):
    ui_server.post("/settings/Comfy.TutorialCompleted", True)
    # front end 1.49 (host 0.33) opens a redesigned node library by default; its help panel is the classic one's
    ui_server.post("/settings/Comfy.NodeLibrary.NewDesign", False)
    with Browser(width=1600, height=1000) as browser:
        browser.open(ui_server.url + "/", timeout=120)
        browser.wait_for(f"window.app && window.app.graph && window.LiteGraph && "
                         f"'{node_id}' in window.LiteGraph.registered_node_types", timeout=120)
        assert browser.evaluate(OPEN_HELP % json.dumps(node_id))
        browser.wait_for(f"document.body.innerText.includes({json.dumps(expected)})", timeout=60)
        assert "## Inputs" not in browser.evaluate("document.body.innerText")  # rendered, not raw markdown
        shot = browser.screenshot(str(tmp_path / "docs.png"))
    if node_id == "LoTTSSearch" and os.environ.get("LOTTS_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)
