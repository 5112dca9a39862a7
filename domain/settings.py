"""Settings, read once from the environment into a frozen dataclass."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

STRIPE_API_BASE = "https://api.stripe.com"


class ConfigError(Exception):
    """A required setting is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "postgresql:///teachery_sync"
    redis_url: str = "redis://127.0.0.1:6379/0"
    webhook_secrets: tuple[str, ...] = ()
    stripe_api_key: str | None = None
    stripe_api_base: str = STRIPE_API_BASE
    admin_token: str | None = None
    webhook_tolerance_seconds: int = 300
    teachery_base_url: str = "http://localhost:8000"
    link_secret: str | None = None  # signs password-reset links; derived from the webhook secret when unset
    max_body_bytes: int = 1024 * 1024
    stripe_network_retries: int = 2
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        secrets = tuple(s.strip() for s in env.get("STRIPE_WEBHOOK_SECRET", "").split(",") if s.strip())
        tolerance = env.get("WEBHOOK_TOLERANCE_SECONDS", "300")
        try:
            tolerance_seconds = int(tolerance)
        except ValueError:
            raise ConfigError(f"WEBHOOK_TOLERANCE_SECONDS must be a whole number of seconds, got {tolerance!r}")
        return cls(
            database_url=env.get("DATABASE_URL") or cls.database_url,
            redis_url=env.get("REDIS_URL") or cls.redis_url,
            webhook_secrets=secrets,
            stripe_api_key=env.get("STRIPE_API_KEY") or None,
            stripe_api_base=(env.get("STRIPE_API_BASE") or STRIPE_API_BASE).rstrip("/"),
            admin_token=env.get("ADMIN_TOKEN") or None,
            webhook_tolerance_seconds=tolerance_seconds,
            teachery_base_url=(env.get("TEACHERY_BASE_URL") or cls.teachery_base_url).rstrip("/"),
            link_secret=env.get("TEACHERY_LINK_SECRET") or None,
        )

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    def require_webhook_secret(self) -> None:
        if not self.webhook_secrets:
            raise ConfigError(
                "STRIPE_WEBHOOK_SECRET is not set: set it to your endpoint's signing secret (whsec_…); "
                "several may be given comma-separated while rotating"
            )
