"""Talk to one ComfyUI server: submit an API graph, follow it over the websocket, fetch its outputs.

stdlib (urllib) for HTTP and websocket-client for /ws. Every call has a timeout; connection problems raise
`ServerUnavailable` (worth retrying elsewhere), a rejected graph raises `ValidationFailed` and a failed run
`ExecutionFailed` (not worth retrying: the same graph fails the same way), each with a message that names
the node (id, class and title) and ComfyUI's own error record in `.details`.
"""

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

try:
    import websocket  # websocket-client
except ImportError:  # pragma: no cover - polling still works
    websocket = None

_TIMEOUTS = (socket.timeout, TimeoutError) + ((websocket.WebSocketTimeoutException,) if websocket else ())
#: Keys of a /history "outputs" entry that hold files ({filename, subfolder, type}).
FILE_KINDS = ("images", "gifs", "videos", "audio", "latents", "files", "3d", "meshes")


class ClientError(RuntimeError):
    def __init__(self, message, details=None):
        super().__init__(message)
        self.details = details
        self.prompt_id = None


class ServerUnavailable(ClientError):
    """The server could not be reached, answered garbage, or did not finish in time."""


class ValidationFailed(ClientError):
    """POST /prompt answered 400: the graph was rejected before running."""


class ExecutionFailed(ClientError):
    """The graph ran and a node raised (or the run was interrupted)."""


@dataclass
class OutputFile:
    node_id: str
    kind: str
    filename: str
    subfolder: str = ""
    type: str = "output"
    path: str | None = None  # where it was downloaded


@dataclass
class RunResult:
    prompt_id: str
    server: str
    status: str
    outputs: dict = field(default_factory=dict)  # node_id -> the node's /history outputs
    files: list = field(default_factory=list)  # OutputFile
    texts: dict = field(default_factory=dict)  # node_id -> ["..."] (PreviewAny, report strings)
    seconds: float = 0.0
    events: list = field(default_factory=list)


def _titles(graph):
    return {nid: node.get("_meta", {}).get("title") for nid, node in (graph or {}).items() if isinstance(node, dict)}


def describe_node(graph, node_id, class_type=None):
    node = (graph or {}).get(str(node_id), {}) if isinstance(graph, dict) else {}
    class_type = class_type or node.get("class_type") or "?"
    title = node.get("_meta", {}).get("title") if isinstance(node, dict) else None
    text = f"node {node_id} ({class_type}"
    if title and title != class_type:
        text += f", '{title}'"
    return text + ")"


def format_validation_error(body, graph=None):
    """A readable multi-line message from POST /prompt's 400 body."""
    error = body.get("error") or {}
    lines = [f"the server rejected the workflow: {error.get('message') or error.get('type') or body}"]
    if error.get("details"):
        lines[0] += f" ({error['details']})"
    for node_id, record in sorted((body.get("node_errors") or {}).items()):
        where = describe_node(graph, node_id, record.get("class_type"))
        for item in record.get("errors", []):
            detail = item.get("details") or ""
            lines.append(f"  {where}: {item.get('message', item.get('type'))}" + (f": {detail}" if detail else ""))
    return "\n".join(lines)


def format_execution_error(data, graph=None):
    where = describe_node(graph, data.get("node_id"), data.get("node_type"))
    return (f"{where} raised {data.get('exception_type', 'an error')}: "
            f"{str(data.get('exception_message', '')).strip()}")


class ComfyClient:
    """One ComfyUI server, e.g. `ComfyClient("http://127.0.0.1:8188")`."""

    def __init__(self, url, timeout=30.0, client_id=None):
        self.url = url.rstrip("/")
        if "://" not in self.url:
            self.url = "http://" + self.url
        self.timeout = timeout
        self.client_id = client_id or uuid.uuid4().hex

    def __repr__(self):
        return f"ComfyClient({self.url!r})"

    # -- HTTP ------------------------------------------------------------------------------------------
    def _request(self, path, payload=None, raw=False, timeout=None):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:  # noqa: S310
                body = response.read()
                return response.status, (body if raw else json.loads(body or b"{}"))
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, (body if raw else json.loads(body or b"{}"))
            except json.JSONDecodeError:
                return exc.code, {"error": {"message": body.decode(errors="replace")[:2000]}}
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError, OSError) as exc:
            raise ServerUnavailable(f"{self.url}{path}: {getattr(exc, 'reason', exc)}") from exc
        except json.JSONDecodeError as exc:
            raise ServerUnavailable(f"{self.url}{path}: the answer is not JSON ({exc})") from exc

    def get(self, path):
        status, body = self._request(path)
        if status != 200:
            raise ServerUnavailable(f"GET {self.url}{path} answered {status}: {str(body)[:500]}", body)
        return body

    def post(self, path, payload):
        return self._request(path, payload)

    def system_stats(self):
        return self.get("/system_stats")

    def object_info(self, class_type=None):
        return self.get("/object_info" + (f"/{urllib.parse.quote(class_type)}" if class_type else ""))

    def queue_length(self):
        """Prompts running plus waiting on this server."""
        queue = self.get("/queue")
        return len(queue.get("queue_running", [])) + len(queue.get("queue_pending", []))

    def history(self, prompt_id):
        return self.get(f"/history/{urllib.parse.quote(prompt_id)}").get(prompt_id)

    def interrupt(self, prompt_id=None):
        self.post("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def cancel(self, prompt_id):
        """Take a prompt off the queue, or interrupt it if it is running."""
        self.post("/queue", {"delete": [prompt_id]})
        self.interrupt(prompt_id)

    # -- running ---------------------------------------------------------------------------------------
    def submit(self, graph, allow_partial=False):
        """Queue the graph; returns its prompt id. ComfyUI queues a graph even when some of its outputs are
        invalid (it runs the valid ones and lists the others in node_errors): unless `allow_partial`, such a
        prompt is taken off the queue again and reported as a validation failure."""
        status, body = self.post("/prompt", {"prompt": graph, "client_id": self.client_id})
        if status == 200 and "prompt_id" in body:
            if body.get("node_errors") and not allow_partial:
                self.cancel(body["prompt_id"])
                error = ValidationFailed(format_validation_error(
                    {"error": {"message": "some outputs of the workflow are invalid (the valid ones were not run)"},
                     "node_errors": body["node_errors"]}, graph), body)
                error.prompt_id = body["prompt_id"]
                raise error
            return body["prompt_id"]
        if status == 400 or (isinstance(body, dict) and "node_errors" in body):
            raise ValidationFailed(format_validation_error(body, graph), body)
        raise ServerUnavailable(f"POST {self.url}/prompt answered {status}: {str(body)[:500]}", body)

    def _connect(self, timeout):
        if websocket is None:
            return None
        ws_url = self.url.replace("https://", "wss://").replace("http://", "ws://")
        try:
            return websocket.create_connection(f"{ws_url}/ws?clientId={self.client_id}", timeout=timeout)
        except (OSError, websocket.WebSocketException):
            return None  # fall back to polling /history

    def run(self, graph, output_dir=None, timeout=600.0, on_event=None, poll_interval=2.0):
        """Submit, follow to the end, fetch outputs (and download them into `output_dir` if given)."""
        start = time.time()
        ws = self._connect(min(self.timeout, timeout))
        events = []
        prompt_id = None
        try:
            prompt_id = self.submit(graph)
            outcome = self._follow(ws, prompt_id, graph, start + timeout, on_event, events, poll_interval)
            entry = self._wait_history(prompt_id, start + timeout)
        except ServerUnavailable as exc:
            exc.prompt_id = prompt_id  # so a caller can cancel what may still be queued or running
            raise
        finally:
            if ws is not None:
                try:
                    ws.close()
                except Exception:  # noqa: S110 - closing a broken socket
                    pass
        status = (entry.get("status") or {}).get("status_str") or outcome.get("status")
        if outcome.get("status") == "error" or status == "error":
            data = outcome.get("data") or _error_from_history(entry)
            if data.get("interrupted"):
                where = describe_node(graph, data.get("node_id"), data.get("node_type"))
                raise ExecutionFailed(f"prompt {prompt_id} was interrupted at {where}", data)
            raise ExecutionFailed(format_execution_error(data, graph), data)
        result = RunResult(prompt_id=prompt_id, server=self.url, status="success", outputs=entry.get("outputs", {}),
                           events=events)
        for node_id, output in result.outputs.items():
            for kind in FILE_KINDS:
                for item in output.get(kind, []) or []:
                    if isinstance(item, dict) and "filename" in item:
                        result.files.append(OutputFile(node_id, kind, item["filename"], item.get("subfolder", ""),
                                                       item.get("type", "output")))
            if "text" in output:
                result.texts[node_id] = output["text"]
        if output_dir is not None:
            for item in result.files:
                item.path = self.download(item, output_dir)
        result.seconds = time.time() - start
        return result

    def _follow(self, ws, prompt_id, graph, deadline, on_event, events, poll_interval):
        last_poll = time.time()
        while time.time() < deadline:
            message = None
            if ws is not None:
                try:
                    ws.settimeout(max(0.05, min(poll_interval, deadline - time.time())))
                    raw = ws.recv()
                    message = json.loads(raw) if isinstance(raw, str) else None  # binary frames: previews
                except _TIMEOUTS:
                    pass
                except Exception:  # the socket broke: keep going by polling
                    ws = None
            else:
                time.sleep(min(poll_interval, max(0.0, deadline - time.time())))
            if message:
                data = message.get("data") or {}
                if data.get("prompt_id") in (None, prompt_id):
                    events.append(message)
                    if on_event:
                        on_event(message)
                kind = message.get("type")
                if data.get("prompt_id") == prompt_id:
                    if kind == "execution_success":
                        return {"status": "success"}
                    if kind == "execution_error":
                        return {"status": "error", "data": data}
                    if kind == "execution_interrupted":
                        return {"status": "error", "data": {**data, "interrupted": True}}
                    if kind == "executing" and data.get("node") is None:
                        return {"status": "done"}
            if ws is None or time.time() - last_poll >= poll_interval:
                last_poll = time.time()
                entry = self.history(prompt_id)
                if entry and (entry.get("status") or {}).get("completed") is not None:
                    return {"status": entry["status"].get("status_str")}
        raise ServerUnavailable(f"prompt {prompt_id} on {self.url} did not finish in time")

    def _wait_history(self, prompt_id, deadline):
        """History is written just after the final websocket event; wait for it briefly."""
        while True:
            entry = self.history(prompt_id)
            if entry and (entry.get("status") or {}).get("completed") is not None:
                return entry
            if time.time() > deadline:
                raise ServerUnavailable(f"prompt {prompt_id} on {self.url} has no history entry")
            time.sleep(0.05)

    def download(self, item, output_dir):
        query = urllib.parse.urlencode({"filename": item.filename, "subfolder": item.subfolder, "type": item.type})
        status, body = self._request(f"/view?{query}", raw=True, timeout=max(self.timeout, 60))
        if status != 200:
            raise ServerUnavailable(f"could not download {item.subfolder}/{item.filename} from {self.url} ({status})")
        target_dir = os.path.join(output_dir, item.subfolder) if item.subfolder else output_dir
        os.makedirs(target_dir, exist_ok=True)
        path = os.path.join(target_dir, os.path.basename(item.filename))
        with open(path, "wb") as f:
            f.write(body)
        return path


def _error_from_history(entry):
    for kind, data in (entry.get("status") or {}).get("messages", []):
        if kind == "execution_error":
            return data
        if kind == "execution_interrupted":
            return {**data, "interrupted": True}
    return {"exception_message": "unknown failure (no execution_error in the history)"}
