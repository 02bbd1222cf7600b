"""gunicorn settings for QianLi: ``gunicorn -c config/gunicorn.conf.py 'api.wsgi:app'``.

- JSON log lines (gunicorn's own messages too) through ``qianli.observability``; no gunicorn access
  log: the app writes one JSON access line per request, with its request id.
- Prometheus multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` (default ``$QIANLI_VAR_DIR/prometheus``,
  emptied when gunicorn starts unless the caller set it) is shared by the workers; a dead worker's
  live gauges are dropped, its counters and histograms keep counting in the sum.
Command-line options (``--bind``, ``--workers``...) override the values here.
"""

import os
import shutil
from pathlib import Path

bind = os.environ.get("QIANLI_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("QIANLI_WEB_WORKERS", "2"))
threads = 4
timeout = 60
accesslog = None
errorlog = "-"

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
