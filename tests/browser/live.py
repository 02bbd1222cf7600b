"""Helpers of the browser tests: the app served on a free loopback port in a thread, and the HR login."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serve(rt) -> Iterator[str]:
    """``create_app(rt)`` served by werkzeug on 127.0.0.1 (a free port) while the block runs; yields its base URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from werkzeug.serving import make_server

    from api.app import create_app

    server = make_server("127.0.0.1", 0, create_app(rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def login(page, base: str, company_code: str, username: str, password: str) -> None:
    """Sign in through the login form and land on the console's home page."""
    page.goto(f"{base}/hr/login")
    page.fill("#company_code", company_code)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hr/")
