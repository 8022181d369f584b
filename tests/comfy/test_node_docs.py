"""Node-docs pages (web/docs/<NodeId>.md, WEB_DIRECTORY): one per LoTTS node, up to date with the nodes'
tooltips, and served by the real ComfyUI server where the front end's node-docs panel fetches them."""

import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "docs"))
import node_help  # noqa: E402


def test_every_lotts_node_has_an_up_to_date_page(comfy_env):
    pages = node_help.pages(comfy_env.nodes)
    registered = {n for n in comfy_env.nodes.NODE_CLASS_MAPPINGS if n.startswith("LoTTS") and not n.startswith("LoTTSTest")}
    assert set(pages) == registered and len(registered) >= 17
    for name, text in pages.items():
        path = node_help.OUT / f"{name}.md"
        assert path.is_file(), f"{path} missing: run docs/node_help.py"
        assert path.read_text() == text, f"{path.name} is stale: run docs/node_help.py"
        assert "## Inputs" in text and "## Outputs" in text


def test_the_server_serves_the_pages(comfy_server):
    with urllib.request.urlopen(f"{comfy_server.url}/extensions/lotts/docs/LoTTSSearch.md", timeout=30) as response:
        text = response.read().decode()
    assert text.startswith("# LoTTS Search (all-in-one)") and "Settings per family" in text
