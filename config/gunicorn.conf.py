"""gunicorn settings for QianLi: ``gunicorn -c config/gunicorn.conf.py 'api.wsgi:app'``.

- JSON log lines (gunicorn's own messages too) through ``qianli.observability``; no gunicorn access
  log: the app writes one JSON access line per request, with its request id.
- Prometheus multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` (default ``$QIANLI_VAR_DIR/prometheus``,
  emptied when gunicorn starts unless the caller set it) is shared by the workers; a dead worker's
  live gauges are dropped, its counters and histograms keep counting in the sum.
- Every answer is the contract's JSON error model. Requests the application sees get it from the
  application: 414 ``uri_too_long`` past ``QIANLI_MAX_URL_BYTES``, 431 ``request_header_too_large``
  past ``QIANLI_MAX_HEADER_BYTES`` (api/limits.py), limits set below gunicorn's own here. What gunicorn
  refuses before the application (a request line over 8190 bytes, gunicorn's maximum; a header field
  over ``limit_request_field_size``; more than ``limit_request_fields`` headers; an unparseable
  request) gunicorn answers itself, with the same JSON model instead of its HTML page
  (``write_json_error`` replaces ``gunicorn.util.write_error``).
Command-line options (``--bind``, ``--workers``...) override the values here.
"""

import json
import os
import shutil
from pathlib import Path

from gunicorn import util

from api.errors import HTTP_CODES

bind = os.environ.get("QIANLI_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("QIANLI_WEB_WORKERS", "2"))
threads = 4
timeout = 60
accesslog = None
errorlog = "-"
# gunicorn's own parser limits: above the application's (which answer with their codes), and bounded.
limit_request_line = 8190  # gunicorn's maximum (0 would mean unlimited)
limit_request_field_size = 32 * 1024
limit_request_fields = 100


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Replacement for ``gunicorn.util.write_error`` (same signature): the JSON error model."""
    code, message = HTTP_CODES.get(status_int, (f"http_{status_int}", reason))
    body = json.dumps({"code": code, "status": status_int, "message": message,
                       "details": {"reason": str(mesg)[:200]}}, ensure_ascii=False).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


util.write_error = write_json_error

_given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_metrics_dir = Path(_given or Path(os.environ.get("QIANLI_VAR_DIR", "var")).absolute() / "prometheus")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
    },
    "handlers": {},
    "formatters": {},
}


def on_starting(server):
    if not _given and _metrics_dir.exists():
        shutil.rmtree(_metrics_dir)
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    from qianli.observability import configure_logging

    configure_logging(os.environ.get("QIANLI_LOG_LEVEL", "INFO"), os.environ.get("QIANLI_LOG_FORMAT", "json"))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
