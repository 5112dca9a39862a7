"""RQ's own dashboard (rq-dashboard) under /admin/rq/, behind the console's sign-in (session.guard)."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import rq_dashboard
from flask import Flask
from rq_dashboard.web import setup_rq_connection

from webhooks import current

TIMEOUTS = {"socket_timeout": "3", "socket_connect_timeout": "2"}  # Redis down: a 503 within seconds


def with_timeouts(url: str) -> str:
    """The Redis URL with short timeouts (the dashboard makes its own clients from the URL)."""
    base, _, query = url.partition("?")  # unix:///path has no host, which urlunsplit would drop
    given = dict(parse_qsl(query))
    return f"{base}?{urlencode(given | {k: v for k, v in TIMEOUTS.items() if k not in given})}"


def mount(app: Flask, prefix: str) -> None:
    app.config.update(RQ_DASHBOARD_REDIS_URL=with_timeouts(current.services_of(app).settings.redis_url),
                      RQ_DASHBOARD_POLL_INTERVAL=5000, RQ_DASHBOARD_DELETE_JOBS=False)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=prefix)
    setup_rq_connection(app)  # no network: the client connects on first use
