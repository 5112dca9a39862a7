"""Running the Flask app under gunicorn from the command line."""
from __future__ import annotations

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from webhooks.app import create_app

        return create_app()  # per worker process, after fork: each opens its own pool


def serve(host: str, port: int, workers: int) -> None:
    _Gunicorn({
        "bind": f"{host}:{port}",
        "workers": workers,
        "accesslog": "-",
        "logger_class": "teachery_sync.logs.GunicornLogger",  # gunicorn's lines as ours (JSON or console)
        "timeout": 30,
        "graceful_timeout": 10,
        "control_socket_disable": True,  # gunicorn 27 otherwise shares ~/.gunicorn/gunicorn.ctl machine-wide
    }).run()
