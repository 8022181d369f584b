"""The demo's report.html (scripts/demo_report.py) from a real run of the demo pipeline through the HTTP API,
opened in headless Chromium: every picture loads and each section is there. A screenshot goes to
docs/images/demo_report.png when LOTTS_UPDATE_SCREENSHOT=1."""

import json
import os
import shutil
import sys

import harness
import pytest
from cdp import Browser

sys.path.append(str(harness.REPO / "scripts"))
import demo_report  # noqa: E402

SCREENSHOT = harness.REPO / "docs" / "images" / "demo_report.png"
pytestmark = [pytest.mark.server, pytest.mark.slow]

CHECK = """(() => {
  const images = [...document.images];
  return {images: images.length, loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
          headings: [...document.querySelectorAll('h2')].map(h => h.innerText)};
})()"""


def test_demo_report_from_a_real_run(ui_server, tmp_path):
    graph = json.loads((harness.REPO / "workflows" / "api" / "lotts_demo_pipeline.json").read_text())
    entry = ui_server.wait(ui_server.submit(graph), timeout=600)
    folder = tmp_path / "demo"
    folder.mkdir()
    for node_id, out in entry["outputs"].items():
        for image in out.get("images", []):
            source = ui_server.base_dir / "output" / image.get("subfolder", "") / image["filename"]
            shutil.copyfile(source, folder / source.name)
        for text in out.get("text", []):
            (folder / f"node{node_id}_report.json").write_text(text if isinstance(text, str) else json.dumps(text))
    report = demo_report.build(folder)
    with Browser(width=1200, height=2400) as browser:
        browser.open(report.as_uri(), timeout=60)
        browser.wait_for("document.readyState === 'complete'", timeout=60)
        state = browser.evaluate(CHECK)
        shot = browser.screenshot(str(tmp_path / "report.png"))
    assert state["images"] >= 3 + 3 + 3 + 1 + 1 and state["loaded"] == state["images"], state
    for heading in ("1. Candidates", "2. Where the low-quality prompt", "3. Where LoTTS re-denoises",
                    "4. Originals and refinements", "5. Chosen", "Compute against Best-of-N"):
        assert any(h.startswith(heading) for h in state["headings"]), (heading, state["headings"])
    if os.environ.get("LOTTS_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)
