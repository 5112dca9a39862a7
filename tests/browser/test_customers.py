"""The Customers pages in a real browser: search, the profile's actions (refund, cancel, pause, revoke and
grant) against the fake Stripe, and copying a course link. Screenshots: customers-search, customers-none,
profile, profile-after-refund, links (1280 and 390 px)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.blackbox.helpers import buyer

ACCT = "acct_1BrowserCreator"
COURSE, CLUB = "course_watercolour", "course_sketch_club"


@pytest.fixture
def ada(svc):
    """Ada bought COURSE (50.00 USD) and subscribes to CLUB: (our customer id, her charge, her subscription)."""
    cus, charge, sub = buyer(svc, ACCT, "Ada Lovelace", "ada@example.com", course=COURSE, subscribes_to=CLUB)
    return svc.profile(cus["id"], ACCT)["id"], charge, sub


def open_profile(console, customer_id: str) -> None:
    console.open(f"/admin/customers/{customer_id}")
    console.find("#activity")


def test_search_a_customer_and_open_the_profile(signed_in, svc, ada):
    buyer(svc, ACCT, "Grace Hopper", "grace@navy.mil")
    signed_in.open("/admin/customers")
    signed_in.fill({"q": "LOVELACE"})
    signed_in.click("main form button[type=submit]")
    signed_in.wait_for_text("Ada Lovelace", "table")
    assert "Grace" not in signed_in.text("table") and ACCT in signed_in.text("table")
    signed_in.screenshot("customers-search")
    signed_in.click("table a")
    signed_in.wait_for_text("Course access")
    assert signed_in.path == f"/admin/customers/{ada[0]}"
    signed_in.screenshot("profile")

    signed_in.open("/admin/customers")
    signed_in.fill({"q": "ada.lovelace@elsewhere.org"})
    signed_in.click("main form button[type=submit]")
    signed_in.wait_for_text("try their first or last name alone")
    signed_in.screenshot("customers-none")
    for path in ("/admin/customers?q=nobody", f"/admin/customers/{ada[0]}", f"/admin/customers/{ada[0]}/links"):
        signed_in.open(path)
        signed_in.driver.set_window_size(390, 844)
        assert signed_in.no_horizontal_scroll(), path
        signed_in.driver.set_window_size(1280, 900)


def test_refund_part_of_a_payment(signed_in, svc, ada):
    customer_id, charge, _ = ada
    open_profile(signed_in, customer_id)
    scope = f"#payment-{charge['id']}"
    signed_in.click(f"{scope} summary")
    assert signed_in.find(f"{scope} input[name=amount]").get_attribute("value") == "50.00"
    signed_in.fill({"amount": "12.50", "reason": "requested_by_customer"}, within=scope)
    signed_in.click(f"{scope} details form button[type=submit]")
    assert "Course access is not revoked" in signed_in.accept_confirmation()
    signed_in.wait_for_text("Refund of 12.50 USD asked of Stripe")
    [write] = svc.fake.writes("/v1/refunds")
    assert write["params"]["amount"] == "1250" and write["params"]["charge"] == charge["id"]
    assert write["idempotency_key"].startswith("teachery-") and write["account"] == ACCT
    assert "pending" in signed_in.text(scope) and "until Stripe confirms it" in signed_in.text(scope)
    signed_in.screenshot("profile-after-refund")
    svc.settle()  # Stripe's refund events come back: the refund is confirmed
    signed_in.wait_until(lambda c: "succeeded" in c.text(scope) and "pending" not in c.text(scope), reload=True)


def test_cancel_at_period_end(signed_in, svc, ada):
    customer_id, _, sub = ada
    open_profile(signed_in, customer_id)
    scope = f"#subscription-{sub['id']}"
    signed_in.click(f"{scope} form:has(input[value=period_end]) button")
    assert "Access stays until then" in signed_in.accept_confirmation()
    signed_in.wait_for_text("will cancel at the end of its period")
    assert "cancels at period end" in signed_in.text(scope)
    [write] = svc.fake.writes(f"/v1/subscriptions/{sub['id']}")
    assert write["params"]["cancel_at_period_end"] == "true" and svc.fake.writes("/v1/refunds") == []


def test_pause_with_a_resume_date(signed_in, svc, ada):
    customer_id, _, sub = ada
    open_profile(signed_in, customer_id)
    scope = f"#subscription-{sub['id']}"
    signed_in.click(f"{scope} summary")
    signed_in.fill({"behavior": "mark_uncollectible"}, within=scope)
    day = (datetime.now(UTC) + timedelta(days=14)).date()
    date_input = signed_in.find(f"{scope} input[name=resumes_on]")
    signed_in.driver.execute_script("arguments[0].value = arguments[1]", date_input, day.isoformat())
    signed_in.click(f"{scope} details form button[type=submit]")
    signed_in.wait_for_text(f"until {day.isoformat()} 00:00:00 UTC")
    assert "collection paused" in signed_in.text(scope) and "Resume" in signed_in.text(scope)
    [write] = svc.fake.writes(f"/v1/subscriptions/{sub['id']}")
    resumes = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    assert write["params"]["pause_collection"] == {"behavior": "mark_uncollectible", "resumes_at": str(resumes)}


def test_revoke_then_grant_access(signed_in, svc, ada):
    customer_id, _, _ = ada
    open_profile(signed_in, customer_id)
    row = f"#course-{COURSE}"
    signed_in.click(f"{row} button[type=submit]")
    signed_in.wait_for_text("Nothing was refunded and no subscription was canceled")
    assert "revoked" in signed_in.text(row)
    signed_in.click(f"{row} button[type=submit]")
    signed_in.wait_for_text("granted. Nothing was charged")
    assert "active" in signed_in.text(row)
    assert svc.fake.writes() == []  # course access is ours alone: no Stripe call
    assert signed_in.find("#activity .origin-teachery")


def test_copy_a_course_link(signed_in, svc, ada):
    customer_id, _, _ = ada
    signed_in.open(f"/admin/customers/{customer_id}/links")
    login = signed_in.find("#link-login").get_attribute("value")
    assert login.endswith(f"/login?customer={customer_id}")
    signed_in.click("[data-copy=link-login]")
    signed_in.wait_for_text("Copied", "[data-copy=link-login]", timeout=5)
    pasted = signed_in.driver.execute_script(
        "var t = document.createElement('textarea'); t.id = 'pasted'; document.querySelector('main').append(t);"
        "t.focus(); return t.id;")
    signed_in.find(f"#{pasted}").send_keys(Keys.CONTROL, "v")
    value = signed_in.driver.find_element(By.ID, pasted).get_attribute("value")
    assert value == login
    signed_in.driver.execute_script("document.getElementById('pasted').remove()")
    signed_in.screenshot("links")
