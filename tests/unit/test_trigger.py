"""`teachery-sync trigger`: the events it builds are valid Stripe events, correctly signed, that our
receiver accepts; later triggers act on the objects earlier ones made."""
from __future__ import annotations

import json

import pytest
import stripe
from click.testing import CliRunner

from teachery_sync.cli import main
from tests.support import WEBHOOK_SECRET
from tests.trigger_history import HISTORY, history
from trigger import build_events, signature_header
from trigger import samples as sample_objects
from trigger.scenarios import SCENARIOS, TriggerError, TriggerOptions, TriggerState


def test_history_covers_every_trigger():
    assert {event_type for event_type, _ in HISTORY} == set(SCENARIOS)


def test_the_signature_is_stripes_own_scheme():
    body = b'{"id": "evt_1", "object": "event"}'
    header = signature_header(body, WEBHOOK_SECRET, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    stripe.WebhookSignature.verify_header(body.decode(), header, WEBHOOK_SECRET, tolerance=None)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body.decode(), header, "whsec_other", tolerance=None)


def test_envelopes_are_full_stripe_events():
    for _, events in history(account="acct_1Creator"):
        for event in events:
            assert event["id"].startswith("evt_") and event["object"] == "event"
            assert event["api_version"] == sample_objects.DEFAULT_API_VERSION
            assert event["livemode"] is False and event["pending_webhooks"] >= 1
            assert set(event["request"]) == {"id", "idempotency_key"}
            assert event["account"] == "acct_1Creator"
            assert isinstance(event["created"], int)
            assert event["data"]["object"]["id"]
            if event["type"].endswith(".updated") or event["type"] == "charge.refunded":
                assert event["data"]["previous_attributes"], event["type"]


def test_a_purchase_sends_what_stripe_sends_with_the_course_in_metadata():
    state = TriggerState(None)
    events = build_events("checkout.session.completed", TriggerOptions(course="course_yoga", amount=2500), state)
    assert [e["type"] for e in events] == ["customer.created", "charge.succeeded", "payment_intent.succeeded",
                                          "checkout.session.completed"]
    customer, charge, intent, session = (e["data"]["object"] for e in events)
    assert charge["customer"] == intent["customer"] == session["customer"] == customer["id"]
    assert session["payment_intent"] == intent["id"] == charge["payment_intent"]
    assert intent["latest_charge"] == charge["id"]
    for obj in (charge, intent, session):
        assert obj["metadata"] == {"course_id": "course_yoga"}
    assert charge["amount"] == intent["amount_received"] == session["amount_total"] == 2500


def test_a_subscription_purchase_links_subscription_invoice_and_charge():
    events = build_events("checkout.session.completed", TriggerOptions(mode="subscription"), TriggerState(None))
    by_type = {e["type"]: e["data"]["object"] for e in events}
    assert list(by_type) == ["customer.created", "customer.subscription.created", "charge.succeeded",
                             "payment_intent.succeeded", "invoice.paid", "invoice.payment_succeeded",
                             "checkout.session.completed"]
    sub, invoice, charge = (by_type["customer.subscription.created"], by_type["invoice.paid"],
                            by_type["charge.succeeded"])
    assert sub["metadata"] == {"course_id": "course_demo"}
    assert invoice["subscription"] == sub["id"] and invoice["charge"] == charge["id"]
    assert charge["invoice"] == invoice["id"] == sub["latest_invoice"]
    assert by_type["checkout.session.completed"]["subscription"] == sub["id"]


def test_partial_refunds_add_up_and_a_failed_refund_gives_its_amount_back():
    state = TriggerState(None)
    build_events("checkout.session.completed", TriggerOptions(), state)
    first = build_events("charge.refunded", TriggerOptions(amount=1000), state)
    charge = first[0]["data"]["object"]
    assert (charge["amount_refunded"], charge["refunded"]) == (1000, False)
    assert first[0]["data"]["previous_attributes"] == {"amount_refunded": 0}
    assert first[1]["type"] == "refund.created" and first[1]["data"]["object"]["amount"] == 1000
    build_events("charge.refunded", TriggerOptions(amount=900), state)
    with pytest.raises(TriggerError, match="3000 usd left"):
        build_events("charge.refunded", TriggerOptions(amount=3001), state)
    failed = build_events("refund.failed", TriggerOptions(), state)
    assert [e["type"] for e in failed] == ["charge.refund.updated", "refund.updated", "refund.failed"]
    assert failed[-1]["data"]["object"]["status"] == "failed"
    assert failed[1]["data"]["previous_attributes"]["status"] == "succeeded"
    rest = build_events("charge.refunded", TriggerOptions(), state)  # whole: what is left
    assert rest[1]["data"]["object"]["amount"] == 4900 - 1000
    assert rest[0]["data"]["object"]["refunded"] is True


def test_subscription_changes_say_what_changed():
    state = TriggerState(None)
    build_events("checkout.session.completed", TriggerOptions(mode="subscription"), state)
    [paused] = build_events("customer.subscription.updated",
                            TriggerOptions(change="pause", behavior="mark_uncollectible", resumes_at=1_900_000_000),
                            state)
    assert paused["data"]["object"]["pause_collection"] == {"behavior": "mark_uncollectible",
                                                            "resumes_at": 1_900_000_000}
    assert paused["data"]["previous_attributes"] == {"pause_collection": None}
    [resumed] = build_events("customer.subscription.updated", TriggerOptions(change="resume"), state)
    assert resumed["data"]["object"]["pause_collection"] is None
    [ending] = build_events("customer.subscription.updated", TriggerOptions(change="cancel-at-period-end"), state)
    sub = ending["data"]["object"]
    assert sub["cancel_at_period_end"] is True and sub["cancel_at"] == sub["current_period_end"]
    [deleted] = build_events("customer.subscription.deleted", TriggerOptions(), state)
    assert deleted["data"]["object"]["status"] == "canceled" and deleted["data"]["object"]["ended_at"]
    with pytest.raises(TriggerError, match="already canceled"):
        build_events("customer.subscription.deleted", TriggerOptions(), state)


def test_api_versions_shape_the_payloads():
    def purchase(version):
        events = build_events("checkout.session.completed", TriggerOptions(mode="subscription"),
                              TriggerState(None), api_version=version)
        return {e["type"]: e["data"]["object"] for e in events}

    old, basil = purchase("2020-03-02"), purchase(sample_objects.BASIL)
    assert "refunds" in old["charge.succeeded"] and "charges" in old["payment_intent.succeeded"]
    assert "invoice_payment.paid" not in old
    invoice = basil["invoice.paid"]
    assert "subscription" not in invoice and "charge" not in invoice
    assert invoice["parent"]["subscription_details"]["subscription"] == basil["customer.subscription.created"]["id"]
    assert basil["invoice_payment.paid"]["payment"]["payment_intent"] == basil["payment_intent.succeeded"]["id"]
    assert "current_period_end" not in basil["customer.subscription.created"]
    assert basil["customer.subscription.created"]["items"]["data"][0]["current_period_end"]
    assert "invoice" not in basil["charge.succeeded"]


def test_objects_are_named_or_the_last_one_is_used(tmp_path):
    path = tmp_path / "trigger-state.json"
    state = TriggerState.load(path)
    first = build_events("checkout.session.completed", TriggerOptions(), state)[1]["data"]["object"]["id"]
    build_events("checkout.session.completed", TriggerOptions(), state)
    state.save()
    state = TriggerState.load(path)  # kept between runs
    [refunded, _] = build_events("charge.refunded", TriggerOptions(charge=first, amount=100), state)
    assert refunded["data"]["object"]["id"] == first
    with pytest.raises(TriggerError, match="ch_unknown is not one that `trigger` made"):
        build_events("charge.refunded", TriggerOptions(charge="ch_unknown"), state)
    with pytest.raises(TriggerError, match="no subscription to use yet"):
        build_events("customer.subscription.deleted", TriggerOptions(), state)


def test_accounts_keep_their_own_objects():
    state = TriggerState(None)
    build_events("checkout.session.completed", TriggerOptions(account="acct_1A"), state)
    with pytest.raises(TriggerError, match="no charge to use yet"):
        build_events("charge.refunded", TriggerOptions(account="acct_1B"), state)


def test_cli_print_shows_the_events_without_sending(tmp_path):
    result = CliRunner().invoke(main, ["trigger", "checkout.session.completed", "--print", "--dev-dir",
                                       str(tmp_path), "--account", "acct_1Print"], env={"STRIPE_WEBHOOK_SECRET": ""})
    assert result.exit_code == 0, result.output
    events = json.loads(result.output)
    assert [e["account"] for e in events] == ["acct_1Print"] * 4
    assert not (tmp_path / "trigger-state.json").exists()


def test_cli_without_a_secret_says_which_variable_to_set(tmp_path):
    result = CliRunner().invoke(main, ["trigger", "checkout.session.completed", "--dev-dir", str(tmp_path)],
                                env={"STRIPE_WEBHOOK_SECRET": ""})
    assert result.exit_code != 0
    assert "set STRIPE_WEBHOOK_SECRET" in result.output


def test_cli_when_the_receiver_is_down_says_so(tmp_path):
    from teachery_sync.embedded import free_port

    url = f"http://127.0.0.1:{free_port()}/webhooks/stripe"
    result = CliRunner().invoke(main, ["trigger", "checkout.session.completed", "--dev-dir", str(tmp_path),
                                       "--url", url, "--secret", WEBHOOK_SECRET])
    assert result.exit_code == 1
    assert f"cannot reach {url}" in result.output
    assert not (tmp_path / "trigger-state.json").exists()  # nothing was accepted: nothing remembered


def test_cli_refuses_two_subscription_changes_at_once(tmp_path):
    result = CliRunner().invoke(main, ["trigger", "customer.subscription.updated", "--pause", "--resume", "--print",
                                       "--dev-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: --pause, --resume, --cancel-at-period-end and --reactivate exclude each other: give one"]


def test_cli_never_prints_the_password_of_its_url(tmp_path):
    """A receiver behind basic auth: `--url http://user:password@host/…` was printed as given, password and all,
    in the "sending" line and in the "cannot reach" error."""
    from teachery_sync.embedded import free_port

    port = free_port()
    result = CliRunner().invoke(main, ["trigger", "checkout.session.completed", "--dev-dir", str(tmp_path),
                                       "--url", f"http://stripe:TriggerPass9f3e@127.0.0.1:{port}/webhooks/stripe",
                                       "--secret", WEBHOOK_SECRET])
    assert result.exit_code == 1
    assert "TriggerPass9f3e" not in result.output, result.output
    assert f"sending 4 event(s) to http://stripe:***@127.0.0.1:{port}/webhooks/stripe" in result.output
    assert f"cannot reach http://stripe:***@127.0.0.1:{port}/webhooks/stripe" in result.output
