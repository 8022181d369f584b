"""Spread a batch of graphs over several ComfyUI servers.

Each server gets `per_server` worker threads that pull jobs from one shared queue, so a server takes new
work only when it has capacity: the least busy server gets the next job. A worker whose server is busy with
other users' prompts leaves the job to idle servers. A job that meets an unreachable or stuck server is put
back for another server (up to `retries` times); a server that fails twice in a row is dropped. A graph that
fails validation or execution is not retried (it would fail again) and is reported with the failing node.
"""

import json
import logging
import os
import queue
import re
import threading
import time
from dataclasses import asdict, dataclass, field

from .api import ClientError, ComfyClient, ExecutionFailed, ServerUnavailable, ValidationFailed

log = logging.getLogger("lotts_client")
SERVER_FAILURES_BEFORE_DROP = 2


@dataclass
class Job:
    index: int
    graph: dict
    label: str = ""
    attempts: int = 0


@dataclass
class JobResult:
    index: int
    label: str
    status: str  # "success" or "failed"
    server: str | None = None
    prompt_id: str | None = None
    files: list = field(default_factory=list)  # downloaded paths (or server file names)
    texts: dict = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None  # validation / execution / unavailable
    seconds: float = 0.0
    attempts: int = 0


def slug(text, limit=40):
    text = re.sub(r"[^A-Za-z0-9]+", "_", text or "").strip("_").lower()
    return text[:limit] or "job"


class _Server:
    def __init__(self, url, timeout):
        self.client = ComfyClient(url, timeout=timeout)
        self.url = self.client.url
        self.inflight = 0
        self.failures = 0
        self.alive = True
        self.lock = threading.Lock()

    def busy_with_others(self):
        """True when the server's queue holds more prompts than this batch has sent to it."""
        try:
            return self.client.queue_length() > self.inflight
        except ClientError:
            return False  # let the run itself find out


def run_batch(server_urls, jobs, output_dir=None, timeout=600.0, retries=2, per_server=1, on_event=None,
              on_result=None, request_timeout=30.0, busy_wait=2.0):
    """Run every job; returns JobResults in job order. `on_event(server_url, job, message)` gets websocket
    events, `on_result(JobResult)` each finished job."""
    servers = [_Server(url, request_timeout) for url in server_urls]
    if not servers:
        raise ValueError("no server given")
    pending = queue.Queue()
    for job in jobs:
        pending.put(job)
    results = {}
    results_lock = threading.Lock()
    remaining = [len(jobs)]
    done = threading.Event()
    if not jobs:
        done.set()

    def finish(result):
        with results_lock:
            results[result.index] = result
            remaining[0] -= 1
            if remaining[0] <= 0:
                done.set()
        if on_result:
            on_result(result)

    def others_alive(server):
        return any(s.alive and s is not server for s in servers)

    def worker(server):
        client = ComfyClient(server.url, timeout=request_timeout)  # own client id: events come to this thread
        while not done.is_set() and server.alive:
            if not pending.empty() and server.busy_with_others() and others_alive(server):
                time.sleep(busy_wait)
                continue
            try:
                job = pending.get(timeout=0.2)
            except queue.Empty:
                if all(not s.alive for s in servers):
                    return
                continue
            job.attempts += 1
            job_dir = os.path.join(output_dir, f"{job.index:03d}_{slug(job.label)}") if output_dir else None
            with server.lock:
                server.inflight += 1
            started = time.time()
            try:
                result = client.run(job.graph, output_dir=job_dir, timeout=timeout,
                                           on_event=(lambda m, j=job: on_event(server.url, j, m)) if on_event else None)
            except ServerUnavailable as exc:
                with server.lock:
                    server.failures += 1
                    if server.failures >= SERVER_FAILURES_BEFORE_DROP:
                        server.alive = False
                        log.warning("dropping server %s after %d failures: %s", server.url, server.failures, exc)
                _try_cancel(server, exc)
                if job.attempts <= retries and any(s.alive for s in servers):
                    log.warning("job %d on %s: %s; retrying (%d/%d)", job.index, server.url, exc, job.attempts, retries)
                    pending.put(job)
                else:
                    finish(JobResult(job.index, job.label, "failed", server.url, error=str(exc),
                                     error_kind="unavailable", seconds=time.time() - started, attempts=job.attempts))
            except (ValidationFailed, ExecutionFailed) as exc:
                server.failures = 0
                kind = "validation" if isinstance(exc, ValidationFailed) else "execution"
                finish(JobResult(job.index, job.label, "failed", server.url, error=str(exc), error_kind=kind,
                                 seconds=time.time() - started, attempts=job.attempts))
            else:
                server.failures = 0
                files = [f.path or f"{f.subfolder}/{f.filename}".lstrip("/") for f in result.files]
                finish(JobResult(job.index, job.label, "success", server.url, result.prompt_id, files, result.texts,
                                 seconds=result.seconds, attempts=job.attempts))
            finally:
                with server.lock:
                    server.inflight -= 1

    threads = [threading.Thread(target=worker, args=(server,), daemon=True, name=f"lotts-{server.url}-{i}")
               for server in servers for i in range(max(1, per_server))]
    for thread in threads:
        thread.start()
    while not done.is_set():
        if not any(thread.is_alive() for thread in threads):
            break
        done.wait(0.2)
    for thread in threads:
        thread.join(timeout=0.5)
    while True:  # every server gave up: what is left fails
        try:
            job = pending.get_nowait()
        except queue.Empty:
            break
        if job.index not in results:
            finish(JobResult(job.index, job.label, "failed", error="no server available", error_kind="unavailable",
                             attempts=job.attempts))
    ordered = [results[job.index] for job in jobs if job.index in results]
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "results.json"), "w") as f:
            json.dump([asdict(r) for r in ordered], f, indent=2)
    return ordered


def _try_cancel(server, exc):
    """A prompt that timed out may still be queued or running: take it back so it does not waste the server."""
    prompt_id = getattr(exc, "prompt_id", None)
    if prompt_id:
        try:
            server.client.cancel(prompt_id)
        except ClientError:
            pass
