"""Who is asking: admin tokens for /admin/api/* (a bearer header) and for the console's sign-in.

A token that matches names the request's actor (flask.g.actor), recorded on what the request does.
Every token is looked up by one function, `match_token`, so that whatever a token may see (its scope)
is decided in one place for the API and the console alike.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace

from flask import g, jsonify, request

from domain.accounts import run_account
from domain.reconciliations import Scope
from domain.settings import ADMIN_TOKEN_NAME, Settings
from webhooks import current
from webhooks.auth_failures import AuthFailures

ADMIN_PREFIX = "/admin/api"
DISABLED = "admin API disabled: set ADMIN_TOKEN (or ADMIN_TOKENS) to enable it"


@dataclass(frozen=True)
class AdminToken:
    name: str
    secret: str
    scope: str | None = None  # the one account it sees ('' the platform, acct_…), None: every account

    def __repr__(self) -> str:
        return f"AdminToken(name={self.name!r}, scope={self.scope!r})"

    @property
    def digest(self) -> str:
        """A fingerprint of the secret (kept in a console session, so that a changed token ends it)."""
        return hashlib.sha256(self.secret.encode()).hexdigest()[:32]


def under(path: str, prefix: str) -> bool:
    """`path` is `prefix` or below it (/admin/api, /admin/api/…; not /admin/apix)."""
    return path == prefix or path.startswith(prefix + "/")


def admin_tokens(settings: Settings) -> tuple[AdminToken, ...]:
    """The configured admin tokens: ADMIN_TOKENS' and ADMIN_TOKEN's (settings.admin_tokens), or, for
    settings made in code with only admin_token, that one."""
    listed = settings.admin_tokens or (((ADMIN_TOKEN_NAME, settings.admin_token, None),) if settings.admin_token
                                       else ())
    return tuple(AdminToken(name, secret, scope) for name, secret, scope in listed)


def match_token(settings: Settings, given: str) -> AdminToken | None:
    """The token whose secret is `given` (compared in constant time), or None."""
    found = None
    for token in admin_tokens(settings):
        if hmac.compare_digest(given.encode(), token.secret.encode()):
            found = found or token
    return found


def token_named(settings: Settings, name: str, digest: str) -> AdminToken | None:
    """The token a console session was signed in with, if it is still configured unchanged."""
    for token in admin_tokens(settings):
        if token.name == name and hmac.compare_digest(token.digest, digest):
            return token
    return None


def scope() -> str | None:
    """The account the request's token may see ('' the platform, acct_…), or None: every account."""
    return g.get("scope")


def sees(account: str | None) -> bool:
    """Whether the request's token may see a record of this account (its stored key, '' the platform)."""
    allowed = scope()
    return allowed is None or (account or "") == allowed


def listed_account(asked: str | None) -> tuple[str | None, bool]:
    """The account a list is filtered to (a stored key; None: every account), and whether it may list
    anything: a scoped token lists its own account's records, and nothing when `asked` names another."""
    own = scope()
    if own is None:
        return asked, True
    return own, asked is None or asked == own


def own_runs() -> str | None:
    """The reconciliation runs the request's token sees: its account's (a run's account, acct_… or
    `platform`); None: every run."""
    allowed = scope()
    return None if allowed is None else run_account(allowed)


def sees_run(run) -> bool:
    """Whether the request's token may see this reconciliation run."""
    return own_runs() is None or run.account == own_runs()


def scoped_run(asked: Scope) -> Scope:
    """The scope of a run the request's token starts: as asked, or, for a scoped token, its own account."""
    return asked if own_runs() is None else replace(asked, account=own_runs())


def failures() -> AuthFailures:
    services = current.services()
    return AuthFailures(services.redis, services.settings.auth_failure_limit)


def require_admin_token():
    """An app-wide before_request hook for /admin/api/*, run before routing decides anything (so an
    unknown admin path is 401 too): 503 when no token is configured; a matching token passes; anything
    else is 401, or 429 for a client that failed too often lately (webhooks/auth_failures.py)."""
    if not under(request.path, ADMIN_PREFIX):
        return None
    settings = current.services().settings
    if not admin_tokens(settings):
        return jsonify({"error": DISABLED}), 503
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    token = match_token(settings, given.strip()) if scheme.lower() == "bearer" else None
    if token is not None:
        g.actor, g.scope = token.name, token.scope
        return None
    guard = failures()
    wait = guard.refuse(request.remote_addr, "missing or wrong bearer token")
    if wait:
        return guard.refusal(wait)
    return jsonify({"error": "missing or wrong bearer token"}), 401
