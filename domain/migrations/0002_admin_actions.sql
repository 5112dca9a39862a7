-- teachery-sync: admin actions (what an admin asked for, with which Stripe idempotency key, and
-- how it ended) and the outbox of emails left to Teachery's mailer.

CREATE TABLE admin_actions (
    id              text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    kind            text NOT NULL,
    target          text NOT NULL,
    account         text NOT NULL DEFAULT '',
    params          jsonb NOT NULL DEFAULT '{}',
    idempotency_key text NOT NULL UNIQUE,
    outcome         text NOT NULL DEFAULT 'started'
                    CHECK (outcome IN ('started', 'succeeded', 'rejected', 'unavailable', 'failed')),
    error           text,
    status_code     integer,
    response        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX admin_actions_target ON admin_actions (target, created_at);

CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL,
    customer_id     text NOT NULL REFERENCES customers (id),
    admin_action_id text REFERENCES admin_actions (id),
    to_address      text NOT NULL,
    subject         text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX outbox_unsent ON outbox (created_at, id) WHERE sent_at IS NULL;
