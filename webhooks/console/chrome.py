"""What every console page shares: the ledger's failed and waiting counts in the header, the filters
that print money and times, and HTML error pages for browsers (other callers keep JSON errors)."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from flask import Flask, g, render_template, request

from domain import ledger
from webhooks import current
from webhooks.auth import scope, under
from webhooks.console.amounts import decimals
from webhooks.console.session import CONSOLE, RQ_PATH, in_console


def money(amount: int | None, currency: str | None) -> str:
    """4900, "usd" → "49.00 USD" (Stripe's minor units: none for JPY, three decimals for KWD…)."""
    if amount is None:
        return "—"
    places = decimals(currency)
    return f"{Decimal(amount).scaleb(-places):,.{places}f} {(currency or '').upper()}"


def when(value) -> str:
    """A time as people read it, in UTC: "2026-12-02 03:04 UTC" (ISO text or datetime)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def account_name(account: str | None) -> str:
    """An account as the pages show it: its acct_… id, or "platform"."""
    return account or "platform"


def _ledger_counts() -> dict:
    if not getattr(g, "actor", None):
        return {}
    try:
        with current.services().pool.connection() as conn:  # a scoped token: its own account's events only
            counts = ledger.status_counts(conn, account=scope())
    except Exception:  # the page still renders; the header says the counts are unknown
        return {"unknown": True}
    return {"failed": counts.get("failed", 0), "waiting": counts.get("waiting", 0)}


# The console's pages load only their own scripts and styles (inline style attributes aside), and no other site
# may frame them: a framed console page could be clicked through (a refund's confirm button) by a page on top.
CONSOLE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
NO_FRAMES = "frame-ancestors 'none'"  # RQ's dashboard (its own inline scripts) and every JSON answer
STATIC_PATH = CONSOLE + "/static"  # the console's own scripts and styles: cacheable


def security_headers(response):
    """App-wide after_request: no answer may be framed by another site or sniffed as another type; console
    pages get the full Content-Security-Policy; nothing under /admin but its static files may be cached."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    strict = in_console(request.path) and not under(request.path, RQ_PATH)
    response.headers.setdefault("Content-Security-Policy", CONSOLE_POLICY if strict else NO_FRAMES)
    if under(request.path, CONSOLE) and not under(request.path, STATIC_PATH):
        # customers' names, emails and payments: kept by no browser cache or proxy (a shared computer's back button)
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error_page(message: str, status: int):
    """For a browser on a console page: the HTML error page; else None (the caller answers JSON)."""
    if not in_console(request.path):
        return None
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if best != "text/html":
        return None
    return render_template("console/error.html", status=status, message=message), status


def install_chrome(app: Flask) -> None:
    app.jinja_env.filters.update(money=money, when=when, account=account_name)
    # ledger_counts is called by the header only: a fragment (a run's progress, polled every 2 s) or RQ's
    # dashboard renders templates too, and need not query the ledger for it
    app.context_processor(lambda: {"ledger_counts": _ledger_counts, "actor": getattr(g, "actor", None),
                                   "scope": scope()})
    app.extensions["error_page"] = _error_page
    app.after_request(security_headers)
