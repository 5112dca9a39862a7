"""ADMIN_TOKENS: names, tokens and scopes read from the environment; errors that never show a token."""
from __future__ import annotations

import pytest

from domain.settings import ConfigError, Settings
from webhooks.auth import admin_tokens, match_token

ENV = {"STRIPE_WEBHOOK_SECRET": "whsec_x"}


def test_tokens_with_and_without_a_scope_and_admin_token_beside_them():
    settings = Settings.from_env(ENV | {"ADMIN_TOKEN": "root-secret",
                                        "ADMIN_TOKENS": "ann:ann-secret:acct_1Ann, bob:bob-secret:platform,,ops:ops-secret"})
    assert [(t.name, t.scope) for t in admin_tokens(settings)] == [
        ("admin", None), ("ann", "acct_1Ann"), ("bob", ""), ("ops", None)]
    assert match_token(settings, "bob-secret").name == "bob"
    assert match_token(settings, "bob-secre") is None
    shown = repr(settings) + repr(admin_tokens(settings))
    assert not any(secret in shown for secret in ("root-secret", "ann-secret", "bob-secret", "ops-secret"))
    assert {"root-secret", "ann-secret", "bob-secret", "ops-secret"} <= set(settings.secret_values())


@pytest.mark.parametrize("listed, says", [
    ("ann", "entry 1 must be name:token"),
    ("ann:s3cret-one:acct_", "entry 1 (ann): the scope must be acct_… or platform"),
    ("ann:s3cret-one:everything", "the scope must be acct_… or platform"),
    ("a b:s3cret-one", "entry 1 must be name:token"),
    ("ann:s3cret-one,ann:s3cret-two", "the name(s) ann are given twice"),
    ("admin:s3cret-one", "the name(s) admin are given twice"),
    ("ann:s3cret-one,bob:s3cret-one", "two entries have the same token"),
])
def test_a_malformed_entry_is_refused_without_showing_its_token(listed, says):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(ENV | {"ADMIN_TOKEN": "root-secret", "ADMIN_TOKENS": listed})
    assert says in str(refused.value)
    assert "s3cret" not in str(refused.value) and "root-secret" not in str(refused.value)
