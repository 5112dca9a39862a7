"""RQ's own dashboard (rq-dashboard) under /admin/rq/, behind the console's sign-in (session.guard)."""
from __future__ import annotations

import rq_dashboard
from flask import Flask
from rq_dashboard.web import setup_rq_connection

from webhooks import current


def mount(app: Flask, prefix: str) -> None:
    app.config.update(RQ_DASHBOARD_REDIS_URL=current.services_of(app).settings.redis_url,
                      RQ_DASHBOARD_POLL_INTERVAL=5000, RQ_DASHBOARD_DELETE_JOBS=False)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=prefix)
    setup_rq_connection(app)  # no network: the client connects on first use
