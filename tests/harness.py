"""Drive a real ComfyUI: in-process (its validator and PromptExecutor) and as a headless HTTP server.

Shared by tests/, bench/ and the demo. The host lives in .host/ (scripts/setup_host.sh) or COMFYUI_DIR.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
HOST = Path(os.environ.get("LOTTS_HOST", REPO / ".host"))
COMFY_DIR = Path(os.environ.get("COMFYUI_DIR", HOST / "ComfyUI"))
TEST_PACKS = REPO / "tests" / "support"
PACK_NODE_ID = "LoTTSQualityAttentionCapture"  # any pack node: proves the pack registered


class GraphError(RuntimeError):
    """A prompt failed validation or execution; `details` holds ComfyUI's own error record."""

    def __init__(self, message, details):
        super().__init__(message)
        self.details = details


def _find_pack_module(pack_dir):
    """The module ComfyUI imported for a custom-node folder (keyed by its path, '.' -> '_x_')."""
    key = str(pack_dir).replace(".", "_x_")
    if key not in sys.modules:
        raise RuntimeError(f"the node pack at {pack_dir} was not loaded by ComfyUI")
    return sys.modules[key]


def start_in_process(base_dir, **arg_overrides):
    """Import ComfyUI in this process with CPU args and temp dirs; load the pack and the test pack.
    `arg_overrides` set ComfyUI's command-line args (e.g. cpu=False on a GPU machine) before anything reads them."""
    base_dir = Path(base_dir)
    if str(COMFY_DIR) not in sys.path:
        sys.path.insert(0, str(COMFY_DIR))
    from comfy.cli_args import args

    args.cpu = True
    args.disable_api_nodes = True
    for key, value in arg_overrides.items():
        setattr(args, key, value)
    import utils.install_util  # noqa: F401  (ComfyUI's `utils` package must win over comfy/utils.py)
    import folder_paths

    for name in ("output", "input", "temp"):
        (base_dir / name).mkdir(parents=True, exist_ok=True)
    folder_paths.set_output_directory(str(base_dir / "output"))
    folder_paths.set_input_directory(str(base_dir / "input"))
    folder_paths.set_temp_directory(str(base_dir / "temp"))
    folder_paths.add_model_folder_path("custom_nodes", str(TEST_PACKS))
    import execution
    import nodes

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    if PACK_NODE_ID not in nodes.NODE_CLASS_MAPPINGS:
        raise RuntimeError("LoTTS nodes did not register; is the pack linked into custom_nodes/? "
                           "Run scripts/setup_host.sh")
    models_dir = base_dir / "models"
    for name in list(folder_paths.folder_names_and_paths):
        if name == "custom_nodes":
            continue
        (models_dir / name).mkdir(parents=True, exist_ok=True)
        folder_paths.add_model_folder_path(name, str(models_dir / name), is_default=True)
    pack = _find_pack_module(COMFY_DIR / "custom_nodes" / "lotts")
    test_pack = _find_pack_module(TEST_PACKS / "lotts_test_nodes")
    return SimpleNamespace(nodes=nodes, execution=execution, folder_paths=folder_paths, pack=pack,
                           test_pack=test_pack,
                           models_dir=models_dir, output_dir=base_dir / "output", run=run_prompt)


class _StubServer:
    """All that PromptExecutor needs of server.PromptServer; records events for assertions."""

    def __init__(self):
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.events = []

    def send_sync(self, event, data, sid=None):
        self.events.append((event, data))

    def queue_updated(self):
        pass


def run_prompt(prompt):
    """Validate and execute an API-format prompt in-process. Returns an object with `outputs(node_id)`
    (the node's raw Python return values), `ui` (what /history would show) and `events`."""
    import execution

    prompt_id = str(uuid.uuid4())
    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt(prompt_id, prompt, None))
    if not valid:
        raise GraphError(f"validation failed: {error.get('message')}: {json.dumps(node_errors)[:2000]}",
                         {"error": error, "node_errors": node_errors})
    server = _StubServer()
    executor = execution.PromptExecutor(server, cache_type=execution.CacheType.CLASSIC,
                                        # newer executors also read "ram_inactive"; 0.3.75 ignores it
                                        cache_args={"lru": 0, "ram": 0, "ram_inactive": 0})
    executor.execute(prompt, prompt_id, {"client_id": "pytest"}, outputs)
    if not executor.success:
        failure = next((d for e, d in executor.status_messages if e in ("execution_error", "execution_interrupted")),
                       {})
        raise GraphError(f"execution failed in node {failure.get('node_id')} ({failure.get('node_type')}): "
                         f"{failure.get('exception_type')}: {failure.get('exception_message')}", failure)

    def node_outputs(node_id):
        entry = executor.caches.outputs.get(str(node_id))
        entry = asyncio.run(entry) if asyncio.iscoroutine(entry) else entry
        if entry is None:
            raise KeyError(f"node {node_id} did not run or is not cached")
        # one list per output socket, one item per list batch; nodes here are not list-output
        return [values[0] if len(values) == 1 else values for values in entry.outputs]

    return SimpleNamespace(outputs=node_outputs, ui=executor.history_result.get("outputs", {}),
                           events=server.events, prompt_id=prompt_id)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A real `main.py --cpu` on loopback with temp dirs; the pack and the test pack loaded."""

    def __init__(self, base_dir, extra_args=()):
        self.base_dir = Path(base_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self, timeout=120):
        for name in ("output", "input", "temp", "user", "models"):
            (self.base_dir / name).mkdir(parents=True, exist_ok=True)
        config = self.base_dir / "extra_model_paths.yaml"
        config.write_text(f"lotts_tests:\n  base_path: {self.base_dir / 'models'}\n"
                          f"  custom_nodes: {TEST_PACKS}\n  checkpoints: checkpoints\n"
                          f"  lotts_verifiers: lotts_verifiers\n  clip_vision: clip_vision\n")
        python = HOST / "venv" / "bin" / "python"
        cmd = [str(python if python.exists() else sys.executable), "main.py", "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--disable-auto-launch", "--disable-api-nodes",
               "--database-url", "sqlite:///:memory:", "--extra-model-paths-config", str(config),
               "--output-directory", str(self.base_dir / "output"), "--input-directory",
               str(self.base_dir / "input"), "--temp-directory", str(self.base_dir / "temp"),
               "--user-directory", str(self.base_dir / "user"), *self.extra_args]
        # one torch thread: on a shared 2-core machine two threads make tiny-model steps 10x slower
        env = {"OMP_NUM_THREADS": "1", **os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"}
        self.log_path = self.base_dir / "server.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=COMFY_DIR, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                self.get("/system_stats")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        raise TimeoutError(f"ComfyUI did not answer in {timeout}s:\n{self.log_path.read_text()[-4000:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc:
            self._log.close()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path, payload):
        req = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def submit(self, prompt, client_id="pytest"):
        status, body = self.post("/prompt", {"prompt": prompt, "client_id": client_id})
        if status != 200:
            raise GraphError(f"/prompt rejected ({status}): {json.dumps(body)[:2000]}", body)
        return body["prompt_id"]

    def wait(self, prompt_id, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                entry = history[prompt_id]
                if entry["status"].get("status_str") == "success":
                    return entry
                raise GraphError(f"prompt {prompt_id} failed: {json.dumps(entry['status'])[:3000]}", entry)
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")
