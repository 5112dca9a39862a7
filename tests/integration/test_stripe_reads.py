"""StripeApi's GETs (workers/stripe_reads.py) against the fake Stripe over HTTP: the account's header and
the parameters arrive as Stripe reads them, answers are plain dicts, a 5xx is tried again once, a 404 is
NotFound, and a Stripe nobody answers for is StripeUnavailable without the key in its message."""
from __future__ import annotations

import pytest

from teachery_sync.embedded import free_port
from tests.fake_stripe import StripeError
from tests.stripe_events import T0, charge, customer
from workers.stripe_api import NotFound, StripeApi, StripeUnavailable

pytestmark = pytest.mark.integration

ACCT = "acct_1ReadsTest"


def test_a_get_sends_the_account_and_nested_parameters_and_answers_plain_dicts(services, stripe_api):
    stripe_api.put(charge("ch_Reads1", customer="cus_Reads1", amount=900, created=T0), account=ACCT)
    got = services.stripe.retrieve("charge", "ch_Reads1", account=ACCT, expand=["refunds"])
    assert type(got) is dict and got["id"] == "ch_Reads1" and got["amount"] == 900
    listed = services.stripe.request("get", "/v1/charges", account=ACCT, limit=10, created={"gte": T0 - 1})
    assert [c["id"] for c in listed["data"]] == ["ch_Reads1"]
    [one, many] = [c for c in stripe_api.calls if c["path"] in ("/v1/charges/ch_Reads1", "/v1/charges")]
    assert one["account"] == many["account"] == ACCT
    assert one["params"] == {"expand": ["refunds"]}
    assert many["params"] == {"limit": "10", "created": {"gte": str(T0 - 1)}}


def test_a_server_error_is_tried_again_and_a_missing_object_is_not_found(stripe_api):
    api = StripeApi("sk_test_reads", stripe_api.url, max_network_retries=1)
    stripe_api.put(customer("cus_Reads2", email="r2@example.com", name="R 2", created=T0))
    stripe_api.fail_next.append(("GET", "/v1/customers/cus_Reads2", StripeError(500, "api_error", "boom")))
    assert api.retrieve("customer", "cus_Reads2")["id"] == "cus_Reads2"
    assert len(stripe_api.calls_to("/v1/customers/cus_Reads2")) == 2
    stripe_api.fail_next.append(("GET", "/v1/customers/cus_Reads2", StripeError(500, "api_error", "boom",
                                                                             headers={"Stripe-Should-Retry": "false"})))
    with pytest.raises(StripeUnavailable):  # Stripe said not to: not tried again
        api.retrieve("customer", "cus_Reads2")
    assert len(stripe_api.calls_to("/v1/customers/cus_Reads2")) == 3
    with pytest.raises(NotFound):
        api.retrieve("customer", "cus_ReadsNone")


def test_a_stripe_nobody_answers_for_is_unavailable_and_the_key_stays_out_of_the_message():
    api = StripeApi("sk_test_reads_secret_key", f"http://127.0.0.1:{free_port()}", max_network_retries=0)
    with pytest.raises(StripeUnavailable) as raised:
        api.retrieve("customer", "cus_1")
    assert "cannot reach the Stripe API" in str(raised.value)
    assert "sk_test_reads_secret_key" not in str(raised.value) and "sk_test" not in repr(api)
