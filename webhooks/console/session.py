"""Signing in to the console: an admin token (the API's own) for a session cookie, and CSRF.

The cookie is Flask's signed session: HttpOnly, SameSite=Lax, Secure when the request came over https,
ending after CONSOLE_IDLE_MINUTES without a request. It holds the token's name and a fingerprint of its
secret (never the token): a token that is removed or changed ends its sessions. Every page but the
sign-in page needs a session; every state-changing request needs the form's CSRF token (Flask-WTF), or,
for RQ's dashboard (whose own scripts post without one), an Origin or Referer of this very site.
A token is accepted only from the sign-in form's body, never from a URL.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect

from domain.settings import Settings
from webhooks import current
from webhooks.auth import ADMIN_PREFIX, DISABLED, admin_tokens, failures, match_token, token_named, under
from webhooks.errors import error

bp = Blueprint("console", __name__)
csrf = CSRFProtect()
CONSOLE = "/admin"
OPEN_PATHS = ("/admin/sign-in", "/admin/static/")
RQ_PATH = "/admin/rq"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure exactly when the request came over https."""

    def get_cookie_secure(self, app):
        return request.is_secure


def session_key(settings: Settings) -> str:
    """CONSOLE_SECRET_KEY, or a key derived from the admin tokens and webhook secrets (the same in every
    web process; changing a token signs everyone out)."""
    if settings.console_secret_key:
        return settings.console_secret_key
    material = "\n".join([t.secret for t in admin_tokens(settings)] + list(settings.webhook_secrets))
    return hmac.new(b"teachery-sync console sessions", material.encode(), hashlib.sha256).hexdigest()


def in_console(path: str) -> bool:
    return under(path, CONSOLE) and not under(path, ADMIN_PREFIX)


def _same_origin() -> bool:
    """The request says it comes from a page of this site (Origin, else Referer)."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    here = urlsplit(request.host_url)
    there = urlsplit(source)
    return (there.scheme, there.netloc) == (here.scheme, here.netloc)


def guard():
    """App-wide before_request: console paths need a live session; state changes need CSRF proof."""
    path = request.path
    if not in_console(path):
        return None
    if path.startswith(RQ_PATH + "/requeue/") and request.method == "GET":  # RQ's dashboard requeues on GET too
        return error("requeue with the dashboard's button (it posts)", 405)
    if request.method not in SAFE_METHODS:
        if under(path, RQ_PATH):
            if not _same_origin():
                return error("refused: the request did not come from this site's pages", 400)
        else:
            csrf.protect()
    if path.startswith(OPEN_PATHS):
        return None
    settings = current.services().settings
    token = token_named(settings, session.get("token_name", ""), session.get("token_digest", ""))
    if token is None:
        session.clear()
        if request.headers.get("HX-Request"):  # htmx polling a fragment: the whole page goes to sign-in
            page = urlsplit(request.headers.get("HX-Current-URL", ""))
            back = _local(page.path + (f"?{page.query}" if page.query else ""))
            return "", 401, {"HX-Redirect": url_for("console.sign_in", next=back)}
        if request.method in SAFE_METHODS:
            return redirect(url_for("console.sign_in", next=_local(request.full_path)))
        return error("your session ended: sign in again", 401)
    g.actor, g.scope = token.name, token.scope
    if token.scope is not None and under(path, RQ_PATH):
        # RQ's dashboard shows every account's jobs: unscoped tokens only; as if it did not exist
        return error("There is no such page.", 404)
    return None


def _local(target: str | None) -> str:
    """A path on this site to go back to after signing in (anything else: the console's home). Not printable
    is refused too: browsers drop tabs and line breaks from a URL ("/\\t/evil" is "//evil", another site), and
    a line break cannot go in a Location header at all."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or not target.isprintable()):
        return url_for("console_customers.search")
    return target.rstrip("?") if target.endswith("?") else target


@bp.get("/")
def home():
    return redirect(url_for("console_customers.search"))


@bp.get("/sign-in")
def sign_in():
    return render_template("console/sign_in.html", next=_local(request.args.get("next")),
                           disabled=not admin_tokens(current.services().settings))


@bp.post("/sign-in")
def sign_in_post():
    settings = current.services().settings
    target = _local(request.form.get("next"))
    if not admin_tokens(settings):
        return render_template("console/sign_in.html", next=target, disabled=True, error=DISABLED), 503
    token = match_token(settings, request.form.get("token", "").strip())
    if token is None:
        wait = failures().refuse(request.remote_addr, "wrong console token")
        if wait:
            message = f"Too many wrong tokens from this computer. Try again in {wait} seconds."
            return (render_template("console/sign_in.html", next=target, error=message), 429,
                    {"Retry-After": str(wait)})
        message = "That token is not an admin token of this service. Check ADMIN_TOKEN and try again."
        return render_template("console/sign_in.html", next=target, error=message), 401
    session.clear()
    session.permanent = True
    session["token_name"], session["token_digest"] = token.name, token.digest
    return redirect(target)


@bp.post("/sign-out")
def sign_out():
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.sign_in"))


def install(app: Flask) -> None:
    settings = current.services_of(app).settings
    app.secret_key = session_key(settings)
    app.session_interface = SessionCookies()
    app.config.update(
        SESSION_COOKIE_NAME="teachery_console", SESSION_COOKIE_PATH=CONSOLE, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.console_idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True, WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=True)
    csrf.init_app(app)
    app.before_request(guard)
    app.register_error_handler(CSRFError, _csrf_refused)


CSRF_REFUSED = ("Refused: this form did not come with its CSRF token (it is missing, wrong or from an ended "
                "session). Nothing was changed. Reload the page and try again.")


def _csrf_refused(exc: CSRFError):
    return error(CSRF_REFUSED, 400)
