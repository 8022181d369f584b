"""Command line: `python -m lotts_client WORKFLOW [options]` (see --help)."""

import argparse
import json
import logging
import sys
import threading
import time

from . import overrides, workflow
from .api import ClientError, ComfyClient
from .batch import Job, run_batch

EPILOG = """examples:
  # one run with overrides, outputs downloaded to out/
  python -m lotts_client workflows/api/lotts_sd15.json --server 127.0.0.1:8188 \\
      --prompt "a red fox in the snow" --seed 7 --budget 9 --model v1-5-pruned-emaonly.safetensors -o out
  # a batch of prompts (one per line) spread over two servers, least busy first
  python -m lotts_client workflows/api/lotts_sdxl.json --servers http://gpu1:8188,http://gpu2:8188 \\
      --prompts-file prompts.txt -o out
  # any input: TARGET.INPUT=VALUE, TARGET = node id, title or class (JSON values; else a string)
  python -m lotts_client wf.json --set "LoTTS Search.refinements=3" --set KSampler.steps=30
  # check a workflow against the server's nodes without running it
  python -m lotts_client workflows/api/lotts_flux.json --server 127.0.0.1:8188 --check

exit status: 0 all prompts succeeded, 1 some failed, 2 bad arguments or workflow.
"""


def build_parser():
    p = argparse.ArgumentParser(prog="python -m lotts_client", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Run a ComfyUI workflow (API format; UI files are converted using the "
                                            "server's /object_info) with overrides, follow its progress over the "
                                            "websocket, download its outputs, and report errors with the node "
                                            "that raised them.")
    p.add_argument("workflow", help="workflow JSON (API format, or a UI file saved from ComfyUI)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--server", default=None, help="ComfyUI URL (default http://127.0.0.1:8188)")
    where.add_argument("--servers", default=None, help="comma-separated URLs: spread the prompts over them")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--prompt", help="positive prompt text")
    what.add_argument("--prompts-file", help="a file with one prompt per line (blank lines and # comments skipped)")
    p.add_argument("--negative", help="negative prompt text")
    p.add_argument("--seed", type=int, help="seed of every seed / noise_seed input")
    p.add_argument("--budget", type=int, help="samples per prompt: LoTTS seeds = budget / (1 + k x rounds), "
                                              "Best-of-N n = budget")
    p.add_argument("--model", help="model file for CheckpointLoaderSimple / UNETLoader")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="TARGET.INPUT=VALUE",
                   help="set any input (repeatable)")
    p.add_argument("-o", "--output", help="download the outputs into this directory (with results.json)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per prompt (default 1800)")
    p.add_argument("--request-timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)")
    p.add_argument("--retries", type=int, default=2, help="resubmissions after a server failure (default 2)")
    p.add_argument("--per-server", type=int, default=1, help="prompts in flight per server (default 1)")
    p.add_argument("--check", action="store_true", help="only validate against the server's /object_info")
    p.add_argument("--print-graph", action="store_true", help="print the API graph after overrides and exit")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


class Progress:
    """Readable, thread-safe progress lines on stderr: node starts and sampler progress (throttled)."""

    def __init__(self, graphs, quiet):
        self.graphs = graphs
        self.quiet = quiet
        self.lock = threading.Lock()
        self.last = {}

    def __call__(self, server, job, message):
        if self.quiet:
            return
        kind, data = message.get("type"), message.get("data") or {}
        graph = self.graphs.get(job.index, {})
        prefix = f"[{server} #{job.index}]"
        line = None
        if kind == "execution_start":
            line = f"{prefix} started {data.get('prompt_id', '')}"
        elif kind == "executing" and data.get("node") is not None:
            node = graph.get(str(data["node"]), {})
            title = node.get("_meta", {}).get("title") or node.get("class_type")
            line = f"{prefix} node {data['node']} {title}"
        elif kind == "progress":
            now = time.time()
            key = (job.index, data.get("node"))
            if data.get("value") == data.get("max") or now - self.last.get(key, 0) > 2.0:
                self.last[key] = now
                line = f"{prefix}   {data.get('value')}/{data.get('max')}"
        elif kind == "execution_cached" and data.get("nodes"):
            line = f"{prefix} cached nodes {', '.join(map(str, data['nodes']))}"
        if line:
            with self.lock:
                print(line, file=sys.stderr, flush=True)


def load_workflow(path, client):
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    if isinstance(document, dict) and "nodes" in document and "links" in document:
        return workflow.ui_to_api(document, client.object_info())
    if isinstance(document, dict) and "prompt" in document and isinstance(document["prompt"], dict):
        return document["prompt"]  # a saved /prompt request body
    return document


def read_prompts(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    urls = [u.strip() for u in (args.servers or args.server or "http://127.0.0.1:8188").split(",") if u.strip()]
    first = ComfyClient(urls[0], timeout=args.request_timeout)
    try:
        graph = load_workflow(args.workflow, first)
        prompts = read_prompts(args.prompts_file) if args.prompts_file else [args.prompt]
        if args.prompts_file and not prompts:
            raise overrides.OverrideError(f"{args.prompts_file} has no prompts")
        graphs = {i: overrides.apply(graph, prompt=text, negative=args.negative, seed=args.seed,
                                     budget=args.budget, model=args.model, sets=args.sets)
                  for i, text in enumerate(prompts)}
    except (OSError, json.JSONDecodeError, overrides.OverrideError, workflow.WorkflowError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_graph:
        print(json.dumps(graphs[0] if len(graphs) == 1 else list(graphs.values()), indent=2))
        return 0
    if args.check:
        status = 0
        for url in urls:
            try:
                problems = workflow.validate_api(graphs[0], ComfyClient(url, timeout=args.request_timeout).object_info())
            except ClientError as exc:
                print(f"{url}: {exc}", file=sys.stderr)
                status = 1
                continue
            for problem in problems:
                print(f"{url}: {problem}", file=sys.stderr)
            print(f"{url}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
            status = status or (1 if problems else 0)
        return status
    jobs = [Job(i, graphs[i], prompts[i] or "") for i in graphs]

    def on_result(result):
        if result.status == "success":
            detail = f"{len(result.files)} file(s)" + (f" -> {args.output}" if args.output else "")
            print(f"[{result.server} #{result.index}] done in {result.seconds:.1f}s: {detail}", file=sys.stderr)
            for text in (t for values in result.texts.values() for t in values):
                if not args.quiet:
                    print(f"    {str(text)[:300]}", file=sys.stderr)
        else:
            print(f"[{result.server} #{result.index}] FAILED ({result.error_kind}): {result.error}", file=sys.stderr)

    results = run_batch(urls, jobs, output_dir=args.output, timeout=args.timeout, retries=args.retries,
                        per_server=args.per_server, on_event=Progress(graphs, args.quiet), on_result=on_result,
                        request_timeout=args.request_timeout)
    failed = [r for r in results if r.status != "success"]
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    elif not args.quiet:
        print(f"{len(results) - len(failed)} of {len(results)} prompt(s) succeeded", file=sys.stderr)
    return 1 if failed or len(results) != len(jobs) else 0


if __name__ == "__main__":
    sys.exit(main())
