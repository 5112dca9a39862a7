"""Reconciliations in a real browser: start a dry run, watch it run, read its drift, fix it from its page."""
from __future__ import annotations

EMAIL, CHANGED = "grace@example.com", "grace.hopper@example.com"


def test_a_dry_run_finds_drift_and_fixing_it_corrects_our_record(signed_in, svc):
    fake = svc.fake
    cus = fake.create_customer(None, "Grace Hopper", EMAIL)
    fake.create_customer(None, "Alan Turing", "alan@example.com")  # in step: no drift
    svc.settle()
    # Drift: the email changed in Stripe's Dashboard while our webhook endpoint was down (event lost).
    fake.update_customer(None, cus["id"], {"email": CHANGED})
    fake.take_events()
    assert svc.profile(cus["id"])["email"] == EMAIL

    console = signed_in
    console.open("/admin/reconciliations")
    console.find("#start-run")
    held = fake.hold("/v1/charges")  # the run stays running after the customers, until released
    try:
        console.fill({"mode": "dry_run"})
        console.click("#start-run button[type=submit]")
        console.wait_for_text("Dry run queued")
        assert held.asked.wait(20), "the run never listed the charges"
        console.wait_for_text("Running:", css="#progress")  # the page polls its progress
        assert "objects checked so far" in console.text("#progress")
        console.screenshot("reconciliation-running")
    finally:
        held.release()
    console.wait_for_text("Ours, when read", timeout=30)  # the run ended: the page reloaded with its drift
    dry_run_page = console.path
    drift = console.text("#drift")
    assert "platform · customers" in drift
    assert EMAIL in drift and CHANGED in drift and "no (dry run)" in drift and "Grace Hopper" in drift
    assert "Alan" not in drift and len(console.find_all("#drift tbody tr")) == 1
    link = console.find("#drift tbody a")
    ours = svc.profile(cus["id"])["id"]
    assert link.get_attribute("href").endswith(f"/admin/customers/{ours}")
    assert svc.profile(cus["id"])["email"] == EMAIL  # a dry run changes nothing
    console.screenshot("reconciliation-drift")
    assert console.no_horizontal_scroll()

    console.click("#fix-drift")
    asked = console.accept_confirmation()
    assert "Stripe is not changed" in asked
    console.wait_for_text("Fixing run queued")
    assert console.path != dry_run_page
    console.wait_for_text("succeeded", css="h1", timeout=30)
    fixed = console.text("#drift")
    assert "fixed" in fixed and "not fixed" not in fixed
    assert svc.profile(cus["id"])["email"] == CHANGED  # our record now says what Stripe says
    assert "fixing run applying dry run" in console.text("main")
    assert not fake.writes()  # Stripe itself was not changed
    console.screenshot("reconciliation-fixed")
    assert console.no_horizontal_scroll()

    console.open("/admin/reconciliations")
    rows = console.find_all("main section tbody tr")
    assert len(rows) == 2 and "fixing run applying" in rows[0].text and "succeeded" in rows[1].text
    console.screenshot("reconciliations")


def test_a_bad_scope_is_refused_on_the_page(signed_in, svc):
    signed_in.open("/admin/reconciliations")
    signed_in.fill({"account": "acct_nope!", "mode": "dry_run"})
    signed_in.click("#start-run button[type=submit]")
    assert "Account must be a Stripe account id" in signed_in.text("#start-problem")
    assert signed_in.find("#account").get_attribute("value") == "acct_nope!"
    signed_in.fill({"account": ""})
    signed_in.click("input[name=mode][value=fix]")
    signed_in.click("#start-run button[type=submit]")
    signed_in.wait_for_text("Tick the box", "#start-problem")  # the new page's, not the one before
    assert signed_in.find("input[name=mode][value=fix]").is_selected()
    assert "No reconciliation has run yet" in signed_in.text("main")
