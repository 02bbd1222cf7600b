"""A real HTTP webhook receiver for tests (and a model of what customers should build): it verifies
every request with the ``standardwebhooks`` library (signature and the 5-minute timestamp window),
deduplicates by ``webhook-id`` and records everything it saw.

``mode`` decides the answer: ``ok`` (204), ``error`` (500 before processing), ``ack_lost`` (process
the message, then answer 500 as if the acknowledgement got lost), ``redirect`` (302). ``stop()`` and
``start()`` take the port down and up again (connection refused in between).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["WebhookReceiver", "Received"]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None = None
    duplicate: bool = False

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class _State:
    secrets: list[str]
    mode: str = "ok"
    received: list[Received] = field(default_factory=list)
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)  # webhook-id -> payload (deduplicated)


class WebhookReceiver:
    def __init__(self, *secrets: str, path: str = "/hooks/qianli") -> None:
        self.state = _State(secrets=list(secrets))
        self.path = path
        self.lock = threading.Lock()
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = owner._receive(self.path, headers, body)
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> int:
        st = self.state
        with self.lock:
            mode = st.mode
            if mode == "error":
                st.received.append(Received(headers, body, verified=False, error="answered 500 before processing"))
                return 500
            if mode == "redirect":
                st.received.append(Received(headers, body, verified=False, error="redirected"))
                return 302
            payload, error = None, None
            for secret in st.secrets:
                try:
                    payload = Webhook(secret).verify(body, headers)
                    break
                except WebhookVerificationError as exc:
                    error = str(exc)
            if payload is None or path != self.path:
                st.received.append(Received(headers, body, verified=False, error=error or "wrong path"))
                return 400
            msg_id = headers["webhook-id"]
            duplicate = msg_id in st.processed
            if not duplicate:
                st.processed[msg_id] = payload
            st.received.append(Received(headers, body, verified=True, duplicate=duplicate))
            return 500 if mode == "ack_lost" else 204

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler())
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self.path}"

    @property
    def received(self) -> list[Received]:
        with self.lock:
            return list(self.state.received)

    @property
    def processed(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return dict(self.state.processed)

    def set_mode(self, mode: str) -> None:
        with self.lock:
            self.state.mode = mode

    def set_secrets(self, *secrets: str) -> None:
        with self.lock:
            self.state.secrets = list(secrets)
