"""Requests that race: two refunds of one charge at once, fifty replays of one event at once."""
from __future__ import annotations

import threading
from collections import Counter

from tests.blackbox.helpers import buyer
from tests.blackbox.service import ADMIN_TOKEN

ACCT = "acct_1BBCreatorB"


def _at_once(n: int, call) -> list:
    """Run call(i) in n threads released together; their results in order."""
    start, results = threading.Barrier(n), [None] * n

    def run(i):
        start.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_two_whole_refunds_at_once_with_different_keys_refund_the_charge_once(svc):
    import requests

    cus, charge, _ = buyer(svc, ACCT, "Ada Lovelace", "ada@example.com", course="course_math")

    def refund(i):
        r = requests.post(f"{svc.url}/admin/api/payments/{charge['id']}/refund", json={}, timeout=30,
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": f"race-{i}"})
        return r.status_code, r.json()

    answers = _at_once(2, refund)
    codes = sorted(code for code, _ in answers)
    assert codes[0] == 202, answers
    assert codes[1] in (202, 400, 409), answers
    if codes[1] != 202:  # refused by us, or by Stripe: said clearly
        [(_, refused)] = [(c, b) for c, b in answers if c != 202]
        assert refused["error"] and ("refund" in refused["error"].lower() or "amount" in refused["error"].lower())
    refunded = sum(int(w["params"].get("amount") or charge["amount"]) for w in svc.fake.writes("/v1/refunds")
                   if w["status"] == 200)
    assert svc.fake.get(ACCT, "charge", charge["id"])["amount_refunded"] == charge["amount"]
    assert refunded <= charge["amount"]
    svc.settle()
    [payment] = [p for p in svc.profile(cus["id"], ACCT)["payments"] if p["stripe_charge_id"] == charge["id"]]
    assert (payment["amount_refunded"], payment["status"]) == (charge["amount"], "refunded")
    assert len(payment["refunds"]) == 1


def test_fifty_replays_of_one_event_at_once_apply_it_once(svc):
    import requests

    cus, charge, _ = buyer(svc, ACCT, "Ada Lovelace", "ada@example.com", course="course_math")
    before = svc.profile(cus["id"], ACCT)
    event_id = next(a["stripe_event_id"] for a in before["activity"] if a["stripe_event_id"])

    def replay(_):
        return requests.post(f"{svc.url}/admin/api/events/{event_id}/replay", timeout=30,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code

    assert set(_at_once(50, replay)) == {202}
    svc.wait_settled()
    after = svc.profile(cus["id"], ACCT)
    assert {k: v for k, v in after.items() if k != "activity"} == {k: v for k, v in before.items() if k != "activity"}
    entries = Counter((a["kind"], a["message"], a["stripe_event_id"]) for a in after["activity"])
    assert max(entries.values()) == 1, entries  # no activity entry twice
