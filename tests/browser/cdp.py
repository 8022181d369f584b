"""A minimal Chrome DevTools Protocol driver for Debian's headless Chromium (no npm, no browser download).

Launches `/usr/bin/chromium --headless` with the flags this closed network needs, attaches to its first page
over the DevTools websocket (websocket-client) and offers what the browser test uses: navigate, evaluate
JavaScript (awaiting promises), wait for a condition, capture a PNG screenshot.
"""

import base64
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import websocket

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


class CDPError(RuntimeError):
    pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """`with Browser() as b: b.open(url); b.evaluate("1+1")`."""

    def __init__(self, width=1600, height=1000, chromium=CHROMIUM):
        self.chromium = chromium
        self.width, self.height = width, height
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="lotts-chromium-")
        self.proc = None
        self.ws = None
        self._ids = itertools.count(1)
        self.console = []  # (level, text) from the page, for failure messages
        self.exceptions = []

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self, timeout=60):
        self.log = open(os.path.join(self.profile, "chromium.log"), "w")
        self.proc = subprocess.Popen(
            [self.chromium, *FLAGS, f"--remote-debugging-port={self.port}", f"--user-data-dir={self.profile}",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        page = None
        while time.time() < deadline and page is None:
            if self.proc.poll() is not None:
                raise CDPError(f"chromium exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=5) as r:
                    pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
                page = pages[0] if pages else None
            except OSError:
                pass
            if page is None:
                time.sleep(0.2)
        if page is None:
            raise CDPError(f"chromium's DevTools did not answer in {timeout}s: {self._log_tail()}")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout,
                                              suppress_origin=True)
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        return self

    def close(self):
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:  # noqa: S110 - best effort on teardown
                pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _log_tail(self):
        try:
            with open(os.path.join(self.profile, "chromium.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    # -- protocol ----------------------------------------------------------------------------------
    def call(self, method, timeout=60, **params):
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.time() + timeout
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise CDPError(f"{method}: no answer in {timeout}s")
            self.ws.settimeout(remaining)
            message = json.loads(self.ws.recv())
            if message.get("id") == msg_id:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def _event(self, message):
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append((params.get("type"), text))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(details.get("exception", {}).get("description") or details.get("text"))

    def evaluate(self, expression, timeout=60):
        """Evaluate JavaScript in the page (promises awaited); return its JSON value."""
        result = self.call("Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"JavaScript error: {text}")
        return result.get("result", {}).get("value")

    def open(self, url, timeout=60):
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", timeout=timeout)

    def wait_for(self, condition, timeout=60, interval=0.25):
        deadline = time.time() + timeout
        last_error = None
        while time.time() < deadline:
            try:
                if self.evaluate(f"Boolean({condition})"):
                    return
            except CDPError as exc:
                last_error = exc
            time.sleep(interval)
        raise CDPError(f"timed out after {timeout}s waiting for {condition!r} (last error: {last_error}); "
                       f"page exceptions: {self.exceptions[-5:]}")

    def screenshot(self, path, clip=None):
        """A PNG of the viewport, or of `clip` = {x, y, width, height} in CSS pixels."""
        params = {"format": "png"}
        if clip:
            params["clip"] = {**{k: round(float(clip[k]), 1) for k in ("x", "y", "width", "height")}, "scale": 1}
        data = self.call("Page.captureScreenshot", **params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
