"""A small OpenAI-compatible server on loopback, for tests and benchmarks.

It speaks `POST /v1/chat/completions` and `GET /v1/models`, answers MedAgent prompts with the
offline simulator's brain (`simulate_reply`), so a whole conversation can run over real HTTP
through LiteLLM's `openai/<name>` path, and reports realistic `usage`.

Per test you can set a fixed latency and queue faults that the next requests get, one each:

    "401", "429", "500", "503"   error status with an OpenAI-style error body (a 401 quotes the key, as
                         OpenAI's does)
    "hang"               hold the request longer than any sane client timeout, then give up
    "malformed"          200 with a body that is not JSON
    "empty_choices"      200 with valid JSON and `choices: []`
    "drop"               close the connection without answering
    "bad_content"        200, well-formed, but the reply text follows no MedAgent format
    "truncated"          200, well-formed reply cut off (`finish_reason: "length"`)

`responder(messages, model)` can script a model (return text, or None to let the simulator
answer). Every chat request is counted (`hits`) and recorded (`requests`: model, Authorization header,
messages, fault served, the whole JSON body) so tests can prove how many HTTP calls a retry policy made
and which fields reached the wire.

    with FakeLLMServer(latency=0.05) as server:
        server.push_faults("429")
        ... api_base=server.base_url ...
"""
from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

try:
    from generation.medagent.simulator import estimate_tokens, simulate_reply
except ModuleNotFoundError:  # run from a checkout without the project root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from generation.medagent.simulator import estimate_tokens, simulate_reply

FAULTS = ("401", "429", "500", "503", "hang", "malformed", "empty_choices", "drop", "bad_content", "truncated")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class FakeLLMServer:
    def __init__(self, *, latency: float = 0.0, hang_seconds: float = 30.0, host: str = "127.0.0.1", port: int = 0,
                 responder=None, memoize: bool = False):
        self.latency = latency
        # Benchmarks: the simulator's answer is deterministic in (model, messages, seed), so it can be kept
        # and reused; the server stands in for a remote provider and should not eat the cores it measures.
        self._memo: dict | None = {} if memoize else None
        # Optional scripted model: responder(messages, model) -> text, or None for the simulator's answer.
        self.responder = responder
        self.hang_seconds = hang_seconds
        self._address = (host, port)
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.hits = 0
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- control ------------------------------------------------------------------------------

    def _simulated(self, messages, model: str, seed) -> str:
        if self._memo is None:
            return simulate_reply(messages, model, seed)
        key = (model, json.dumps(messages, sort_keys=True), seed)
        if key not in self._memo:
            self._memo[key] = simulate_reply(messages, model, seed)
        return self._memo[key]

    def push_faults(self, *faults: str) -> None:
        for fault in faults:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
        with self._lock:
            self._faults.extend(faults)

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.hits = 0
            self.requests.clear()
            self.max_in_flight = 0

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeLLMServer:
        self._stopping.clear()
        self._server = _Server(self._address, self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakellm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- request handling ---------------------------------------------------------------------
    def _next_fault(self) -> str | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _handler_class(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in one send (buffered, flushed after each request) with Nagle off;
            # otherwise keep-alive connections stall ~40 ms per reply on delayed ACKs.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output clean
                pass

            def _send_json(self, status: int, payload: Any, raw: bytes | None = None, headers=None) -> None:
                body = raw if raw is not None else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    self._send_json(200, {"object": "list", "data": [
                        {"id": "fake-model", "object": "model", "owned_by": "fakellm"}]})
                else:
                    self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def do_POST(self):
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
                    return
                fault = owner._next_fault()
                with owner._lock:
                    owner.hits += 1
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                    owner.requests.append({
                        "model": body.get("model"),
                        "authorization": self.headers.get("Authorization"),
                        "messages": body.get("messages"),
                        "max_tokens": body.get("max_tokens"),
                        "temperature": body.get("temperature"),
                        "fault": fault,
                        "time": time.monotonic(),
                        "body": body,  # the whole JSON body, to check what reached the wire
                    })
                # "In flight" is the model's thinking time; it ends before the reply is written, so
                # a client that frees its slot on receipt can never be counted twice.
                try:
                    if owner.latency:
                        time.sleep(owner.latency)
                finally:
                    with owner._lock:
                        owner.in_flight -= 1
                self._answer(body, fault)

            def _answer(self, body: dict, fault: str | None) -> None:
                if fault in ("401", "429", "500", "503"):
                    kind = {"401": "invalid_api_key", "429": "rate_limit_error", "500": "server_error",
                            "503": "service_unavailable"}[fault]
                    message = f"fake {kind}"
                    if fault == "401":
                        # Like OpenAI's, the message quotes the key it got: the client must scrub it.
                        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                        message = f"fake {kind}: Incorrect API key provided: {key}."
                    self._send_json(int(fault), {"error": {"message": message, "type": kind, "code": fault}})
                    return
                if fault == "hang":
                    owner._stopping.wait(owner.hang_seconds)
                    self.close_connection = True
                    return
                if fault == "drop":
                    self.close_connection = True  # nothing written: the client sees a dropped connection
                    return
                if fault == "malformed":
                    self._send_json(200, None, raw=b'{"id": "chatcmpl-broken", "choices": [{"message": ')
                    return
                model = str(body.get("model") or "fake-model")
                messages = body.get("messages") or []
                if fault == "empty_choices":
                    self._send_json(200, self._completion(model, [], 0, 0))
                    return
                if fault == "bad_content":
                    text = "Sorry, I would rather just chat freely than use any particular format here."
                else:
                    text = owner.responder(messages, model) if owner.responder else None
                    if text is None:
                        text = owner._simulated(messages, model, body.get("seed"))
                finish = "stop"
                if fault == "truncated":
                    text, finish = text[: max(1, len(text) // 3)], "length"
                prompt_text = "\n".join(str(m.get("content") or "") for m in messages)
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                self._send_json(200, self._completion(model, [choice], estimate_tokens(prompt_text),
                                                      estimate_tokens(text)))

            @staticmethod
            def _completion(model: str, choices: list, prompt_tokens: int, completion_tokens: int) -> dict:
                return {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": choices,
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens},
                }

        return Handler


def free_port() -> int:
    """A port nothing listens on (for connection-refused tests)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
