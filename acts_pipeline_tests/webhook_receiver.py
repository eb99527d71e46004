"""A Slack-like incoming webhook for tests: a real HTTP server on 127.0.0.1 that records every POST
(its path, its JSON body, when it arrived) and answers 200 "ok", as Slack does, or the answers a
test scripts first (`answer_next(500, 429, ...)`), or nothing for `delay` seconds."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    body: dict
    at: float  # time.time()

    @property
    def text(self) -> str:
        return self.body.get("text", "")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up (a timeout test) leaves a broken pipe: expected


class WebhookReceiver:
    def __init__(self, path: str = "/services/T0ACTS/B0ACTS/receiver-token", delay: float = 0.0):
        self.path = path
        self.delay = delay
        self.received: list[Received] = []
        self.attempts = 0
        self._answers: list[tuple[int, dict[str, str], str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._lock:
                    outer.attempts += 1
                    scripted = outer._answers.pop(0) if outer._answers else None
                if outer.delay:
                    time.sleep(outer.delay)
                status, headers, answer = scripted or (200, {}, "ok")
                if status == 200:
                    with outer._lock:
                        outer.received.append(Received(self.path, json.loads(body), time.time()))
                data = answer.encode()
                self.send_response(status)
                for name, value in {"Content-Type": "text/plain", "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.base + path

    def answer_next(self, *answers: int | tuple[int, dict[str, str], str]) -> None:
        """The next POSTs get these answers (a status, or status, headers and body), then 200."""
        with self._lock:
            self._answers += [a if isinstance(a, tuple) else (a, {}, f"error {a}") for a in answers]

    def texts(self) -> list[str]:
        with self._lock:
            return [r.text for r in self.received]

    def wait_for(self, predicate, timeout: float) -> list[Received]:
        """The received messages once `predicate(messages)` holds; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                messages = list(self.received)
            if predicate(messages):
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook: not within {timeout:g} s; received {[m.text for m in messages]}")
            time.sleep(0.5)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
