"""The console: web pages for people under /admin/ (the JSON API stays under /admin/api/).

`install(app)` is all create_app needs: session cookies and CSRF (webhooks/console/session.py), the
pages (one module per page group), RQ's own dashboard under /admin/rq/ (webhooks/console/jobs.py), and
HTML error pages for browsers.
"""
from __future__ import annotations

from flask import Blueprint, Flask

from webhooks.console import customers, events, health, jobs, reconciliations, session
from webhooks.console.chrome import install_chrome

PREFIX = "/admin"


def install(app: Flask) -> None:
    session.install(app)
    install_chrome(app)
    assets = Blueprint("console_assets", __name__, static_folder="static", static_url_path="/static",
                       template_folder="templates")
    app.register_blueprint(assets, url_prefix=PREFIX)
    for module in (session, customers, events, reconciliations, health):
        app.register_blueprint(module.bp, url_prefix=PREFIX)
    jobs.mount(app, PREFIX + "/rq")
