"""Private Redis and PostgreSQL servers for the chaos tests: their own ports and data directories in
a temporary directory, so that they can be stopped, restarted and killed without touching the
shared servers on 6379/5432 that other tests use.

PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the ``postgres`` system user
(``runuser``) in a directory it owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis as redis_lib

__all__ = ["free_port", "PrivateRedis", "PrivatePostgres", "redis_server_binary", "postgres_bin_dir"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout} s")


class PrivateRedis:
    """redis-server on its own port, with an append-only file fsynced at every write (what a
    production Redis for RQ should run with): a restart keeps queued jobs, codes and intents."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait(self.ping, 20, f"redis-server on port {self.port} did not start")

    def ping(self) -> bool:
        try:
            with redis_lib.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5) as r:
                return bool(r.ping())
        except redis_lib.RedisError:
            return False

    def stop(self) -> None:
        """A clean shutdown (the append-only file is already on disk)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.url)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary directory, trust authentication on
    127.0.0.1 only, user and database ``qianli``)."""

    def __init__(self):
        self.bin = postgres_bin_dir()
        self.port = free_port()
        # a directory the postgres user can reach (pytest's tmp dirs are private to root)
        self.root = Path(tempfile.mkdtemp(prefix="qianli-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres", "postgres")
        self.url = f"postgresql+psycopg://qianli@127.0.0.1:{self.port}/qianli"

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(args)
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "qianli", "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")
        self.start()
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="qianli", dbname="postgres",
                             autocommit=True) as c:
            c.execute("CREATE DATABASE qianli")

    def start(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=60 "
                "-c shared_buffers=32MB -c fsync=on")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
