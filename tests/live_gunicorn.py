"""A real gunicorn serving ``api.wsgi:app`` on a free loopback port, for tests that need the deployment
itself (several worker processes, gunicorn's own HTTP parser and limits).

The access log records the worker's pid per request (``%(p)s``), so a test can tell which process
answered."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
GUNICORN = str(BIN / "gunicorn")
REPO = Path(__file__).resolve().parents[1]
ACCESS_FORMAT = '%(p)s %(m)s %(U)s %(s)s'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(rt, **extra: str) -> dict[str, str]:
    """The environment of a server process sharing ``rt``'s database, Redis, var dir and secrets."""
    s = rt.settings
    return {**os.environ, "QIANLI_ENV": s.env, "QIANLI_VAR_DIR": str(s.var_dir), "DATABASE_URL": s.database_url,
            "REDIS_URL": s.redis_url, "QIANLI_LOG_LEVEL": "WARNING", "QIANLI_QUIET_HOURS": "off", **extra}


class Gunicorn:
    def __init__(self, base_url: str, access_log: Path, log: Path):
        self.base_url, self.access_log, self.log = base_url, access_log, log

    def access_lines(self) -> list[tuple[int, str, str, int]]:
        """(pid, method, path, status) of every request answered so far."""
        out = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            parts = line.split()  # gunicorn writes the pid as "<1234>"
            if len(parts) == 4 and parts[0].strip("<>").isdigit():
                out.append((int(parts[0].strip("<>")), parts[1], parts[2], int(parts[3])))
        return out

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@contextmanager
def running_gunicorn(env: dict[str, str], workdir: Path, *, workers: int = 2, config: bool = True,
                     health_path: str = "/openapi.json"):
    """gunicorn as ``make run`` starts it (``-c config/gunicorn.conf.py`` when ``config``)."""
    port = free_port()
    access = workdir / "access.log"
    log_path = workdir / "gunicorn.log"
    args = [GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", "4", "--timeout", "120",
            "--access-logfile", str(access), "--access-logformat", ACCESS_FORMAT]
    if config:
        args[1:1] = ["-c", str(REPO / "config" / "gunicorn.conf.py")]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([*args, "api.wsgi:app"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        server = Gunicorn(f"http://127.0.0.1:{port}", access, log_path)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if requests.get(server.base_url + health_path, timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{server.tail()}")
                time.sleep(0.3)
            yield server
        finally:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
