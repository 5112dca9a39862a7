"""The reconciliation report, page by page: GET /admin/api/reconciliations/{id} answers the first `limit`
drift items (500 by default, at most 1000) in the order found, `drift_count`, and `next_drift_after` for
the next page; progress, trigger and resumes; bad paging is a 400."""
from __future__ import annotations

import time

import pytest

from tests.stripe_events import T0, customer

pytestmark = pytest.mark.e2e


def _pages(admin, run_id: str, query: str = "") -> list[dict]:
    pages = [admin("GET", f"/reconciliations/{run_id}{query}")[1]]
    while pages[-1]["next_drift_after"]:
        sep = "&" if query else "?"
        status, page = admin("GET", f"/reconciliations/{run_id}{query}{sep}drift_after={pages[-1]['next_drift_after']}")
        assert status == 200, page
        pages.append(page)
    return pages


def test_a_dry_run_with_more_drift_than_a_page_is_read_page_by_page(admin, run_worker, stripe_api):
    stripe_api.put(*(customer(f"cus_Page{i:04d}", email=f"p{i}@example.com", name=f"P {i}", created=T0 + i)
                     for i in range(650)))
    status, run = admin("POST", "/reconciliations", {"dry_run": True})
    run_worker()

    pages = _pages(admin, run["id"])

    assert [len(p["drift"]) for p in pages] == [500, 150]
    assert [p["drift_count"] for p in pages] == [650, 650]
    assert pages[-1]["next_drift_after"] is None
    objects = [d["object"] for p in pages for d in p["drift"]]
    assert objects == [f"cus_Page{i:04d}" for i in reversed(range(650))]  # Stripe's order: newest first
    first = pages[0]
    assert (first["progress"], first["resumed"], first["trigger"], first["applies"]) == (
        {"platform": {"customer": 650}}, 0, "admin", None)
    assert "rate" not in first and "eta_seconds" not in first  # only while running
    assert [len(p["drift"]) for p in _pages(admin, run["id"], "?limit=1000")] == [650]
    assert [len(p["drift"]) for p in _pages(admin, run["id"], "?limit=300")] == [300, 300, 50]


@pytest.mark.parametrize("query, message", [
    ("?limit=0", "limit must be"), ("?limit=1001", "limit must be"), ("?limit=ten", "limit must be"),
    ("?drift_after=nope", "drift_after must be"), ("?drift_after=ZHJpZnQ6LTE", "drift_after must be"),
    ("?drift_after=%00", "NUL characters are not allowed"), ("?drift_after=%C3%A9", "drift_after must be"),
])
def test_bad_paging_is_400(admin, query, message):
    status, run = admin("POST", "/reconciliations", {"dry_run": True})
    status, body = admin("GET", f"/reconciliations/{run['id']}{query}")
    assert status == 400 and message in body["error"], body


def test_fifty_thousand_drift_items_are_read_quickly_page_by_page(admin, services):
    status, run = admin("POST", "/reconciliations", {"dry_run": True})
    with services.pool.connection() as conn:  # a big run's findings, as its pages would have recorded them
        conn.execute("""INSERT INTO reconciliation_drift (run_id, account, kind, object, field, local, stripe)
                        SELECT %s, NULL, 'customer', 'cus_Many' || lpad(n::text, 6, '0'), 'name',
                               to_jsonb('old ' || n), to_jsonb('new ' || n)
                        FROM generate_series(1, 50000) AS n""", (run["id"],))
        conn.execute("UPDATE reconciliation_runs SET status = 'succeeded', finished_at = now() WHERE id = %s",
                     (run["id"],))
        conn.execute("ANALYZE reconciliation_drift")

    slowest, seen = 0.0, []
    after = None
    while True:
        started = time.monotonic()
        status, page = admin("GET", f"/reconciliations/{run['id']}?limit=1000"
                             + (f"&drift_after={after}" if after else ""))
        slowest = max(slowest, time.monotonic() - started)
        assert status == 200 and page["drift_count"] == 50000
        seen += [d["object"] for d in page["drift"]]
        after = page["next_drift_after"]
        if after is None:
            break
    assert seen == [f"cus_Many{n:06d}" for n in range(1, 50001)]
    assert slowest < 0.5, slowest
