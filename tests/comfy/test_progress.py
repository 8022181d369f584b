"""Live progress with previews over the real server's websocket: LoTTS Search reports each stage (candidates,
masks, refinements) with a preview frame, as the capture reports each pass."""

import json
import uuid

import websocket
from graphs import search_graph


def test_search_sends_stage_progress_and_previews(comfy_server):
    client_id = uuid.uuid4().hex
    ws = websocket.create_connection(f"{comfy_server.url.replace('http', 'ws', 1)}/ws?clientId={client_id}", timeout=60)
    try:
        graph = search_graph("sd15", seeds=2, rounds=2)
        graph["21"]["inputs"]["prompt"] = f"a red circle {uuid.uuid4().hex[:6]}"  # not cached by another test
        status, reply = comfy_server.post("/prompt", {"prompt": graph, "client_id": client_id})
        assert status == 200, reply
        prompt_id = reply["prompt_id"]
        progress, previews, current = [], 0, None
        while True:
            message = ws.recv()
            if isinstance(message, bytes):
                previews += current == "21"  # a binary frame is a preview of the node that is running
                continue
            event = json.loads(message)
            data = event.get("data", {})
            if event["type"] == "executing" and data.get("prompt_id") == prompt_id:
                current = data.get("node")
                if current is None:
                    break
            if event["type"] == "progress" and data.get("node") == "21":
                progress.append((data["value"], data["max"]))
            if event["type"] == "execution_error":
                raise AssertionError(data)
    finally:
        ws.close()
    stages = [p for p in progress if p[1] == 1 + 2 * 2]
    assert [v for v, _ in stages] == [1, 2, 3, 4, 5], progress  # candidates, then masks + refinements per round
    assert previews >= 5
