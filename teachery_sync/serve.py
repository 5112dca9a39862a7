"""Running the Flask app under gunicorn from the command line."""
from __future__ import annotations

import json

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from teachery_sync import error_reporting
from teachery_sync.bootstrap import build
from teachery_sync.metrics_dir import MetricsDir, open_metrics_dir
from webhooks.app import create_app

# Threads per worker process: a slow request (a webhook waiting on a database that is going down)
# holds one thread, while /healthz, /readyz and the admin API are answered by the others.
THREADS = 8


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own refusal (util.write_error's arguments), as a JSON error instead of an HTML page."""
    body = json.dumps({"error": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JsonErrorWorker(ThreadWorker):
    """gunicorn's threaded worker, answering the requests it refuses before Flask sees them (a request
    line or headers too large: 414, 431; a malformed request: 400) in JSON, like every other error."""

    def init_process(self):
        # Worker.handle_error writes those refusals through gunicorn.util.write_error, as HTML.
        util.write_error = write_json_error
        super().init_process()


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # Per worker process, after fork: each opens its own pool, with a connection for every thread.
        services = build(pool_size=THREADS, web=True)
        error_reporting.start(services.settings)  # SENTRY_DSN unset: nothing imported, nothing sent
        return create_app(services)


def serve(host: str, port: int, workers: int, *, metrics_dir: str, access_log: bool = True) -> None:
    """gunicorn's master in this process; the counters' directory opened here, before the workers fork."""
    metrics = open_metrics_dir(metrics_dir)
    _Gunicorn({
        "child_exit": _child_exit(metrics),
        "bind": f"{host}:{port}",
        "workers": workers,
        "accesslog": "-" if access_log else None,  # ACCESS_LOG=off: no request lines at all
        "logger_class": "teachery_sync.logs.GunicornLogger",  # gunicorn's lines as ours (JSON or console)
        "timeout": 30,
        "graceful_timeout": 10,
        "control_socket_disable": True,  # gunicorn 27 otherwise shares ~/.gunicorn/gunicorn.ctl machine-wide
        "worker_class": "teachery_sync.serve.JsonErrorWorker",
        "threads": THREADS,
    }).run()


def _child_exit(metrics: MetricsDir):
    def child_exit(server, worker):
        """gunicorn's hook in the master when a worker ended (even by SIGKILL): its counters stay summed."""
        metrics.process_dead(worker.pid)
    return child_exit
