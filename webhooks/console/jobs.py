"""RQ's own dashboard (rq-dashboard) under /admin/rq/, behind the console's sign-in (session.guard)."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

import rq_dashboard
from flask import Flask, current_app, request
from rq.job import Job
from rq_dashboard.web import setup_rq_connection

from webhooks import current
from webhooks.errors import error

TIMEOUTS = {"socket_timeout": "3", "socket_connect_timeout": "2"}  # Redis down: a 503 within seconds
# The registries rq-dashboard lists; it fails (500) on any other name, as on a page size of 0 or one not in digits.
REGISTRIES = ("queued", "failed", "deferred", "started", "finished", "scheduled", "canceled")
NO_SUCH_PAGE = "There is no such page."


def with_timeouts(url: str) -> str:
    """The Redis URL with short timeouts (the dashboard makes its own clients from the URL)."""
    base, _, query = url.partition("?")  # unix:///path has no host, which urlunsplit would drop
    given = dict(parse_qsl(query))
    return f"{base}?{urlencode(given | {k: v for k, v in TIMEOUTS.items() if k not in given})}"


def refuse_what_the_dashboard_cannot_read():
    """App-wide before_request, for the dashboard's routes only: what rq-dashboard would answer with a 500
    (an instance beyond our one Redis, a registry it does not know, a page or page size not a whole number
    from 1, a job that does not exist) is a 404, or a 400 for a damaged page link."""
    if request.blueprint != rq_dashboard.blueprint.name:
        return None
    args = request.view_args or {}
    if args.get("instance_number", 0) != 0 or args.get("registry_name", "queued") not in REGISTRIES:
        return error(NO_SUCH_PAGE, 404)
    if any(re.fullmatch(r"[1-9][0-9]{0,5}", str(args[name])) is None for name in ("per_page", "page") if name in args):
        return error("That page link is damaged: the page and its size are whole numbers from 1.", 400)
    if "job_id" in args and not Job.exists(args["job_id"], connection=current_app.redis_conn):
        return error(f"There is no job {args['job_id']}.", 404)
    return None


def mount(app: Flask, prefix: str) -> None:
    app.config.update(RQ_DASHBOARD_REDIS_URL=with_timeouts(current.services_of(app).settings.redis_url),
                      RQ_DASHBOARD_POLL_INTERVAL=5000, RQ_DASHBOARD_DELETE_JOBS=False)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=prefix)
    setup_rq_connection(app)  # no network: the client connects on first use
    app.before_request(refuse_what_the_dashboard_cannot_read)
