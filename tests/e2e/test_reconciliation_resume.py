"""A reconciliation run whose worker is killed mid-run is resumed by the next worker from its cursor:
real `teachery-sync worker` processes, a fake Stripe with a thousand customers and hundreds of charges,
SIGKILL while the run reads the charges; the report equals an uninterrupted run's, says `resumed: 1`,
and the fake's calls show the pages the first worker had finished were not read again."""
from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from domain import reconciliations
from tests.stripe_events import T0, charge, customer, iso
from tests.worker_processes import kill_group, start_worker, wait_for

CUSTOMERS, CHARGES = 1000, 300  # 10 and 3 pages
RENAMED = range(5, CUSTOMERS, 97)  # customers renamed in Stripe, on every page
FAILED = range(3, CHARGES, 41)  # charges that failed in Stripe, on every page


def _customer(i: int, name: str | None = None, prefix: str = "Big") -> dict:
    return customer(f"cus_{prefix}{i:04d}", email=f"{prefix.lower()}{i}@example.com", name=name or f"{prefix} {i}",
                    created=T0 + i)


def _charge(i: int, status: str = "succeeded", prefix: str = "Big") -> dict:
    return charge(f"ch_{prefix}{i:04d}", customer=f"cus_{prefix}{i:04d}", amount=1000 + i, created=T0 + i,
                  status=status, metadata={"course_id": "course_big"})


def _items(report: dict) -> list[tuple]:
    return [(d["object"], d["field"], str(d["local"]), str(d["stripe"]), d["fixed"]) for d in report["drift"]]


def _whole(admin, run_id: str) -> dict:
    """The report with every drift page."""
    status, body = admin("GET", f"/reconciliations/{run_id}")
    assert status == 200, body
    while body["next_drift_after"]:
        status, more = admin("GET", f"/reconciliations/{run_id}?drift_after={body['next_drift_after']}")
        body = {**more, "drift": body["drift"] + more["drift"]}
    return body


def _lists(stripe_api, path: str) -> list[str]:
    """The `starting_after` of every list request of `path` ('' for the first page), in order."""
    return [parse_qs(c["query"]).get("starting_after", [""])[0] for c in stripe_api.calls_to(path)
            if c["path"] == path]


def _resumed_by_a_second_worker(admin, stripe_api, tmp_path, run_id: str, timeout: float) -> None:
    """A new worker (both processes) takes the run up again and finishes it within `timeout` seconds."""
    second = start_worker(tmp_path / "second.log", stripe_url=stripe_api.url)
    try:
        assert wait_for(lambda: admin("GET", f"/reconciliations/{run_id}")[1]["status"] == "succeeded", timeout), \
            (tmp_path / "second.log").read_text()
    finally:
        kill_group(second)


@pytest.mark.e2e
def test_a_run_killed_mid_run_is_resumed_by_the_next_worker(admin, run_worker, stripe_api, tmp_path):
    stripe_api.put(*(_customer(i) for i in range(CUSTOMERS)), *(_charge(i) for i in range(CHARGES)))
    status, first = admin("POST", "/reconciliations", {})  # our records: made by a first run
    run_worker()
    assert admin("GET", f"/reconciliations/{first['id']}")[1]["fixed"] == CUSTOMERS + CHARGES
    stripe_api.put(*(_customer(i, f"Renamed {i}") for i in RENAMED), *(_charge(i, "failed") for i in FAILED))

    status, dry = admin("POST", "/reconciliations", {"dry_run": True})  # the drift, found without a break
    run_worker()
    expected = _whole(admin, dry["id"])
    assert expected["drift_count"] == len(RENAMED) + len(FAILED) == len(expected["drift"])

    stripe_api.calls.clear()
    held = stripe_api.hold("/v1/charges", after=2)  # the customers and two pages of charges, then it waits
    status, run = admin("POST", "/reconciliations", {})
    worker = start_worker(tmp_path / "first.log", stripe_url=stripe_api.url)
    try:
        assert held.asked.wait(60), (tmp_path / "first.log").read_text()

        def two_charge_pages_checked():
            return admin("GET", f"/reconciliations/{run['id']}")[1]["progress"].get("platform", {}).get("charge") == 200

        assert wait_for(two_charge_pages_checked, 30)
        running = admin("GET", f"/reconciliations/{run['id']}")[1]
        assert running["status"] == "running" and running["checked"] == CUSTOMERS + 200
        assert running["rate"] > 0 and running["eta_seconds"] is not None
    finally:
        kill_group(worker)  # SIGKILL, both worker processes
    stripe_api.holds.clear()
    held.release()
    assert admin("GET", f"/reconciliations/{run['id']}")[1]["status"] == "running"  # for now

    _resumed_by_a_second_worker(admin, stripe_api, tmp_path, run["id"], timeout=90)

    report = _whole(admin, run["id"])
    assert report["resumed"] == 1 and report["checked"] == expected["checked"] == CUSTOMERS + CHARGES
    assert [item[:4] for item in _items(report)] == [item[:4] for item in _items(expected)]
    assert all(fixed for *_, fixed in _items(report))
    assert report["fixed"] == report["drift_count"] == expected["drift_count"]
    assert report["progress"] == expected["progress"]
    customer_pages, charge_pages = _lists(stripe_api, "/v1/customers"), _lists(stripe_api, "/v1/charges")
    assert len(customer_pages) == len(set(customer_pages)) == 10  # finished before the kill: never re-read
    assert len(set(charge_pages)) == 3 and len(charge_pages) <= 4  # at most the page it was reading, again
    status, after = admin("POST", "/reconciliations", {"dry_run": True})
    run_worker()
    assert admin("GET", f"/reconciliations/{after['id']}")[1]["drift_count"] == 0


@pytest.mark.e2e
def test_a_run_killed_while_fixing_a_page_keeps_its_drift_and_marks_it_fixed_when_resumed(
        admin, stripe_api, tmp_path):
    # Charges since T0 whose customers (older) we have never seen: fixing each fetches its customer.
    stripe_api.put(*(customer(f"cus_Mid{i:04d}", email=f"m{i}@example.com", name=f"M {i}", created=T0 - 10 - i)
                     for i in range(100)),
                   *(charge(f"ch_Mid{i:04d}", customer=f"cus_Mid{i:04d}", amount=500 + i, created=T0 + i,
                            metadata={"course_id": "course_mid"}) for i in range(100)))
    held = stripe_api.hold("/v1/customers/cus_Mid0050")  # the 50th fix of the page (newest first) waits
    status, run = admin("POST", "/reconciliations", {"since": iso(T0)})
    worker = start_worker(tmp_path / "first.log", stripe_url=stripe_api.url)
    try:
        assert held.asked.wait(60), (tmp_path / "first.log").read_text()
        midway = admin("GET", f"/reconciliations/{run['id']}")[1]
        assert (midway["drift_count"], midway["fixed"], midway["checked"]) == (100, 0, 0)  # cursor not moved yet
    finally:
        kill_group(worker)
    stripe_api.holds.clear()
    held.release()

    _resumed_by_a_second_worker(admin, stripe_api, tmp_path, run["id"], timeout=60)

    report = _whole(admin, run["id"])
    assert report["resumed"] == 1 and report["checked"] == 100 and report["fixed"] == report["drift_count"] == 100
    assert _items(report) == [(f"ch_Mid{i:04d}", "exists", "False", "True", True) for i in reversed(range(100))]
    assert len(_lists(stripe_api, "/v1/charges")) == 2  # the page it was fixing, read again
    fetched = [c["path"] for c in stripe_api.calls if c["path"].startswith("/v1/customers/cus_Mid")]
    assert len(fetched) == len(set(fetched)) + 1  # each customer fetched once; the held one twice


ALPHA, BRAVO = "acct_1LaneAlpha", "acct_1LaneBravo"
LANES = {ALPHA: "Alpha", BRAVO: "Bravo"}  # account: its objects' id prefix
LANE_CUSTOMERS, LANE_CHARGES = 250, 150  # 3 and 2 pages per account


def _lane_lists(stripe_api, path: str, account: str) -> list[str]:
    """The `starting_after` of every list request of `path` by `account`, in order."""
    return [parse_qs(c["query"]).get("starting_after", [""])[0] for c in stripe_api.calls
            if c["path"] == path and c["account"] == account]


def _lanes(services, run_id: str) -> dict:
    with services.pool.connection() as conn:
        return (reconciliations.get(conn, run_id).cursor or {}).get("lanes", {})


@pytest.mark.e2e
def test_accounts_are_read_side_by_side_and_a_killed_run_resumes_each_from_its_own_cursor(
        admin, run_worker, services, stripe_api, tmp_path):
    for account, prefix in LANES.items():  # Stripe's ids are unique across accounts
        stripe_api.put(*(_customer(i, prefix=prefix) for i in range(LANE_CUSTOMERS)),
                       *(_charge(i, prefix=prefix) for i in range(LANE_CHARGES)), account=account)
    with services.pool.connection() as conn:
        conn.execute("INSERT INTO accounts (id) VALUES (%s), (%s)", (ALPHA, BRAVO))
    status, first = admin("POST", "/reconciliations", {})  # our records of both accounts: made by a first run
    run_worker()
    assert admin("GET", f"/reconciliations/{first['id']}")[1]["fixed"] == 2 * (LANE_CUSTOMERS + LANE_CHARGES)
    for account, prefix in LANES.items():
        stripe_api.put(*(_customer(i, f"Renamed {i}", prefix) for i in range(7, LANE_CUSTOMERS, 31)), account=account)
    status, dry = admin("POST", "/reconciliations", {"dry_run": True})
    run_worker()
    expected = _whole(admin, dry["id"])

    stripe_api.calls.clear()
    held = stripe_api.hold("/v1/charges", after=1, account=ALPHA)  # ALPHA's second page of charges waits
    status, run = admin("POST", "/reconciliations", {})
    worker = start_worker(tmp_path / "first.log", stripe_url=stripe_api.url)
    try:
        assert held.asked.wait(60), (tmp_path / "first.log").read_text()
        # BRAVO's lane is not held up by ALPHA's: it finishes meanwhile
        assert wait_for(lambda: _lanes(services, run["id"]).get(BRAVO) == {"done": True}, 60), \
            (tmp_path / "first.log").read_text()
        assert wait_for(lambda: admin("GET", f"/reconciliations/{run['id']}")[1]["progress"].get(ALPHA, {})
                        .get("charge") == 100, 30)
        assert _lanes(services, run["id"])[ALPHA]["kind"] == "charge"
    finally:
        kill_group(worker)
    stripe_api.holds.clear()
    held.release()
    killed_at = len(stripe_api.calls)

    second = start_worker(tmp_path / "second.log", stripe_url=stripe_api.url)
    try:
        assert wait_for(lambda: admin("GET", f"/reconciliations/{run['id']}")[1]["status"] == "succeeded", 90), \
            (tmp_path / "second.log").read_text()
    finally:
        kill_group(second)

    report = _whole(admin, run["id"])
    assert report["resumed"] == 1 and report["checked"] == expected["checked"] == 2 * (LANE_CUSTOMERS + LANE_CHARGES)
    assert sorted(item[:4] for item in _items(report)) == sorted(item[:4] for item in _items(expected))
    assert report["fixed"] == report["drift_count"] == expected["drift_count"] == 2 * len(range(7, LANE_CUSTOMERS, 31))
    assert report["progress"] == expected["progress"]
    resumed_calls = stripe_api.calls[killed_at:]
    assert {c["account"] for c in resumed_calls} == {ALPHA}  # BRAVO had finished: nothing of it is read again
    alpha_customers = _lane_lists(stripe_api, "/v1/customers", ALPHA)
    assert len(alpha_customers) == len(set(alpha_customers)) == 3  # finished before the kill: never re-read
    alpha_charges = _lane_lists(stripe_api, "/v1/charges", ALPHA)
    assert len(set(alpha_charges)) == 2 and len(alpha_charges) <= 3  # at most the held page, again
