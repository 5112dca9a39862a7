"""What an id looks like: ours (customer uuids, reconciliation runs), Stripe's (cus_…, ch_…, sub_…,
evt_…, acct_…) and Teachery's course ids all fit one pattern, so anything else cannot name a record."""
from __future__ import annotations

import re

ID_PATTERN = r"[A-Za-z0-9_-]{1,255}"
ID_RULE = "1 to 255 characters of A-Z, a-z, 0-9, _ and -"
_ID = re.compile(ID_PATTERN)


def is_id(value) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


STRIPE_ID_TAIL = r"[A-Za-z0-9_]{1,250}"  # what follows a Stripe id's prefix (acct_, cus_, evt_, …)
_ACCOUNT_ID = re.compile(rf"acct_{STRIPE_ID_TAIL}")


def is_account_id(value) -> bool:
    """A Stripe connected account's id (acct_…)."""
    return isinstance(value, str) and _ACCOUNT_ID.fullmatch(value) is not None
