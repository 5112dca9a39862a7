"""Reading Stripe objects across API versions (pure functions, no I/O)."""
from datetime import UTC, datetime

from tests.support import load_fixture
from workers import stripe_objects as so

OPENAPI_HEAD = "objects/stripe_openapi__openapi__fixtures3.json@HEAD-f6c2a48f__resources.{}.json"


def test_ref_accepts_ids_and_expanded_objects():
    assert so.ref("cus_1") == "cus_1"
    assert so.ref({"id": "cus_1", "object": "customer"}) == "cus_1"
    assert so.ref(None) is None and so.ref("") is None and so.ref(5) is None


def test_when_is_utc_and_ignores_non_times():
    assert so.when(1700000000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert so.when(None) is None and so.when(True) is None and so.when("1700000000") is None


def test_metadata_course_reads_strings_and_numbers():
    assert so.metadata_course({"metadata": {"course_id": " c1 "}}) == "c1"
    assert so.metadata_course({"metadata": {"course_id": 42}}) == "42"
    assert so.metadata_course({"metadata": {"course_id": ""}}) is None
    assert so.metadata_course({"metadata": None}) is None


def test_invoice_subscription_before_and_after_basil():
    # supabase invoice.paid, api 2020-03-02: top-level `subscription`
    old = load_fixture("events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__invoice_paid.json")
    assert so.invoice_subscription(old["data"]["object"]) == old["data"]["object"]["subscription"]
    basil = {"id": "in_1", "parent": {"type": "subscription_details",
                                      "subscription_details": {"subscription": "sub_9", "metadata": {"course_id": "c9"}}}}
    assert so.invoice_subscription(basil) == "sub_9"
    assert so.invoice_course(basil) == "c9"


def test_invoice_payment_refs_before_and_after_basil():
    assert so.invoice_payment_refs({"charge": "ch_1", "payment_intent": "pi_1"}) == ("ch_1", "pi_1")
    basil = {"payments": {"object": "list", "data": [
        {"object": "invoice_payment", "status": "paid", "payment": {"type": "payment_intent", "payment_intent": "pi_2"}}]}}
    assert so.invoice_payment_refs(basil) == (None, "pi_2")
    assert so.invoice_payment_refs({}) == (None, None)


def test_subscription_period_end_moved_to_items_in_basil():
    head = load_fixture(OPENAPI_HEAD.format("subscription"))
    items_end = max(i["current_period_end"] for i in head["items"]["data"])
    assert so.subscription_period_end(head) == so.when(items_end)
    assert so.subscription_period_end({"current_period_end": 1700000000}) == so.when(1700000000)


def test_pause_collection_normalised():
    head = load_fixture(OPENAPI_HEAD.format("subscription"))
    assert so.pause_collection(head) == {"behavior": "mark_uncollectible", "resumes_at": None}
    assert so.pause_collection({"pause_collection": None}) is None
    assert so.pause_collection({"pause_collection": {"behavior": "void", "resumes_at": 1700000000}}) == {
        "behavior": "void", "resumes_at": "2023-11-14T22:13:20Z"}


def test_intent_charge_latest_or_from_list():
    assert so.intent_charge({"latest_charge": "ch_9"}) == "ch_9"
    assert so.intent_charge({"charges": {"data": [{"id": "ch_a", "status": "failed"},
                                                  {"id": "ch_b", "status": "succeeded"}]}}) == "ch_b"
    assert so.intent_charge({}) is None


def test_embedded_refunds_complete_or_not():
    refunded = load_fixture("objects/dj-stripe_dj-stripe__tests____init__.py__FAKE_CHARGE_REFUNDED.json")
    items, complete = so.embedded_refunds(refunded)
    assert items and complete
    assert so.embedded_refunds({"refunds": None}) == ([], False)  # 2022-11-15+: not included


def test_charge_status_of_old_payloads():
    assert so.charge_status({"status": "paid"}) == "succeeded"
    assert so.charge_status({"status": "failed"}) == "failed"
    assert so.charge_status({"paid": False, "failure_code": "card_declined"}) == "failed"


def test_contact_prefers_customer_details():
    assert so.contact({"customer_details": {"name": "A", "email": "a@x"}, "billing_details": {"email": "b@x"}}) == ("A", "a@x")
    assert so.contact({"customer_email": "c@x"}) == (None, "c@x")


SUPABASE = "events/supabase_stripe-sync-engine__packages__fastify-app__src__test__stripe__{}.json"


def test_invoice_attempts_before_basil_in_basil_and_when_basil_leaves_payments_out():
    old = load_fixture(SUPABASE.format("invoice_paid"))
    inv = old["data"]["object"]  # api 2020-03-02, nothing charged yet
    assert so.invoice_attempts(inv) == []
    assert so.invoice_attempts({**inv, "charge": "ch_1", "payment_intent": "pi_1"}) == [("ch_1", "pi_1")]
    head = load_fixture(OPENAPI_HEAD.format("invoice"))  # basil: no charge/payment_intent, `payments` includable
    bare = {k: v for k, v in head.items() if k not in ("charge", "payment_intent", "payments")}
    assert so.invoice_attempts(bare) is None  # the payload cannot say: ask Stripe
    open_attempt = {"object": "invoice_payment", "status": "open", "payment": {"type": "payment_intent",
                                                                               "payment_intent": "pi_1"}}
    assert so.invoice_attempts({**bare, "payments": {"object": "list", "data": [open_attempt]}}) == [(None, "pi_1")]
    assert so.invoice_attempts({"id": "in_free", "object": "invoice"}) == []  # pre-basil, nothing charged


def test_intent_attempt_charge_names_the_failed_attempt():
    failed = load_fixture(SUPABASE.format("payment_intent_payment_failed"))["data"]["object"]
    assert so.intent_attempt_charge(failed) is None  # that fixture's attempt made no charge
    assert so.intent_attempt_charge({**failed, "last_payment_error": {"charge": "ch_bad"}, "latest_charge": "ch_x"}) \
        == "ch_bad"
    assert so.intent_attempt_charge({"latest_charge": "ch_2"}) == "ch_2"
    assert so.intent_attempt_charge({"charges": {"data": [{"id": "ch_1"}, {"id": "ch_2"}]}}) == "ch_2"
