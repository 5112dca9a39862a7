"""GET /healthz (the process runs) and GET /readyz (PostgreSQL and Redis answer)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    services = current_app.extensions["teachery"]
    down = {}
    try:
        with services.pool.connection(timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        down["postgresql"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        services.redis.ping()
    except Exception as exc:
        down["redis"] = str(exc) or type(exc).__name__
    if down:
        return jsonify({"status": "unavailable", "down": sorted(down), "errors": down}), 503
    return jsonify({"status": "ok"})
