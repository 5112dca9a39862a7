"""Bearer-token protection for /admin/api/*: checked before anything else is looked at. The name of
the token that matched is the request's actor (flask.g.actor), recorded on what the request does."""
from __future__ import annotations

import hmac

from flask import g, jsonify, request

from domain.settings import Settings
from webhooks import current

ADMIN_PREFIX = "/admin/api"
ADMIN_TOKEN_NAME = "admin"  # ADMIN_TOKEN alone is one unscoped token of this name


def admin_tokens(settings: Settings) -> dict[str, str]:
    """The configured admin tokens by name."""
    return {ADMIN_TOKEN_NAME: settings.admin_token} if settings.admin_token else {}


def require_admin_token():
    """An app-wide before_request hook for /admin/api/*, run before routing decides anything (so an
    unknown admin path is 401 too): 503 when no token is configured, 401 unless a token matches."""
    if request.path != ADMIN_PREFIX and not request.path.startswith(ADMIN_PREFIX + "/"):
        return None
    tokens = admin_tokens(current.services().settings)
    if not tokens:
        return jsonify({"error": "admin API disabled: set ADMIN_TOKEN to enable it"}), 503
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    given = given.strip().encode()
    matched = [name for name, token in tokens.items() if hmac.compare_digest(given, token.encode())]
    if scheme.lower() != "bearer" or not matched:
        return jsonify({"error": "missing or wrong bearer token"}), 401
    g.actor = matched[0]
    return None
