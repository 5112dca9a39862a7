"""Connected accounts: '' is the platform's own account, shown as null outside."""
from __future__ import annotations

from domain.sql import fetch_column, load

PLATFORM = ""
PLATFORM_NAME = "platform"  # how people name the platform's own account (filters, scopes, a run's account)
_KNOWN = load("ledger").known_accounts


def to_key(account: str | None) -> str:
    """The storage key of an account id (None → platform)."""
    return account or PLATFORM


def to_api(account: str) -> str | None:
    """The account as the API shows it (platform → None)."""
    return account or None


def known(conn) -> list[str]:
    """Every account we have seen an event or record for, platform first."""
    ids = fetch_column(conn, _KNOWN)
    if PLATFORM not in ids:
        ids.insert(0, PLATFORM)
    return ids


def in_scope(conn, account: str | None) -> list[str]:
    """The accounts an operation covers: the one named (acct_…, or `platform`), else the platform and every
    known one."""
    if account == PLATFORM_NAME:
        return [PLATFORM]
    return [to_key(account)] if account else known(conn)


def run_account(key: str) -> str:
    """A run's (or a scope's) name for one account: acct_…, or `platform` (None would mean every one)."""
    return key or PLATFORM_NAME
