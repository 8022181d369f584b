"""The main job: start a real ComfyUI headless, submit the example workflow through its HTTP API on the
embedded demo model, wait for it, and leave every output on disk (default: output/demo/)."""

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "tests"))
sys.path.append(str(REPO / "scripts"))
import harness  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflow", default=str(REPO / "workflows" / "api" / "lotts_demo_pipeline.json"),
                        help="API-format workflow to submit")
    parser.add_argument("--out", default=str(REPO / "output" / "demo"), help="where ComfyUI writes outputs")
    args = parser.parse_args()
    out = Path(args.out)
    base = out.parent / (out.name + ".host")
    server = harness.ComfyServer(base, extra_args=[])
    prompt = json.loads(Path(args.workflow).read_text())
    prompt = prompt.get("prompt", prompt)
    started = time.time()
    server.start()
    try:
        print(f"ComfyUI up at {server.url} in {time.time() - started:.1f}s; submitting {args.workflow}")
        prompt_id = server.submit(prompt)
        entry = server.wait(prompt_id, timeout=1800)
    finally:
        server.stop()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for node_id, node_out in entry["outputs"].items():
        for image in node_out.get("images", []):
            src = base / "output" / image.get("subfolder", "") / image["filename"]
            if image.get("type") == "output" and src.exists():
                dst = out / src.name
                dst.write_bytes(src.read_bytes())
                written.append(str(dst.relative_to(REPO) if dst.is_relative_to(REPO) else dst))
        for text in node_out.get("text", []):
            (out / f"node{node_id}_report.json").write_text(text if isinstance(text, str) else json.dumps(text))
            written.append(str(out / f"node{node_id}_report.json"))
    import demo_report  # scripts/ itself

    written.append(str(demo_report.build(out, prompt)))
    print(f"done in {time.time() - started:.1f}s; {len(written)} files:")
    for path in written:
        print("  ", path)


if __name__ == "__main__":
    main()
