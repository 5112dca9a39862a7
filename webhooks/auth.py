"""Bearer-token protection for /admin/api/*: checked before anything else is looked at."""
from __future__ import annotations

import hmac

from flask import current_app, jsonify, request


ADMIN_PREFIX = "/admin/api"


def require_admin_token():
    """An app-wide before_request hook for /admin/api/*, run before routing decides anything (so an
    unknown admin path is 401 too): 503 when no token is configured, 401 unless the token matches."""
    if request.path != ADMIN_PREFIX and not request.path.startswith(ADMIN_PREFIX + "/"):
        return None
    expected = current_app.extensions["teachery"].settings.admin_token
    if not expected:
        return jsonify({"error": "admin API disabled: set ADMIN_TOKEN to enable it"}), 503
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return jsonify({"error": "missing or wrong bearer token"}), 401
    return None
