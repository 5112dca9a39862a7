"""GET /healthz (the process runs) and GET /readyz (PostgreSQL and Redis answer)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from domain.errors import first_line
from webhooks import current

bp = Blueprint("health", __name__)

# A load balancer must see a 503, not a timeout: readiness waits this long at most for a connection
# (and not at all while the web pool's breaker says PostgreSQL just failed).
READY_DATABASE_TIMEOUT = 0.5


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    services = current.services()
    down = {}
    try:
        with services.pool.connection(timeout=READY_DATABASE_TIMEOUT) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        down["postgresql"] = first_line(exc)
    try:
        services.redis.ping()  # the web's Redis client tries once, for a second at most
    except Exception as exc:
        down["redis"] = str(exc) or type(exc).__name__
    if down:
        return jsonify({"status": "unavailable", "down": sorted(down), "errors": down}), 503
    return jsonify({"status": "ok"})
