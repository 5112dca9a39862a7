-- teachery-sync: initial schema.
-- Every Stripe-derived row is keyed by (account, Stripe id); account '' is the platform's own
-- (the API shows it as null). Money is integer minor units plus a currency.
-- stripe_created/stripe_rank is the version of the Stripe snapshot a row reflects: the
-- created time of the event that carried it, and a rank of its state within that second.

CREATE TABLE accounts (
    id            text PRIMARY KEY,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id              text PRIMARY KEY,
    account         text NOT NULL DEFAULT '',
    type            text NOT NULL,
    api_version     text,
    created         bigint NOT NULL DEFAULT 0,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'received'
                    CHECK (status IN ('received', 'processing', 'processed', 'ignored', 'waiting', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    waiting_on      text,
    source          text NOT NULL DEFAULT 'webhook',
    received_at     timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz,
    next_attempt_at timestamptz
);
CREATE INDEX events_received_at ON events (received_at DESC, id DESC);
CREATE INDEX events_status ON events (status, received_at DESC);
CREATE INDEX events_type ON events (type, received_at DESC);
CREATE INDEX events_waiting_on ON events (account, waiting_on) WHERE waiting_on IS NOT NULL;

CREATE TABLE customers (
    id                 text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    account            text NOT NULL,
    stripe_customer_id text NOT NULL,
    name               text,
    email              text,
    deleted_in_stripe  boolean NOT NULL DEFAULT false,
    stripe_created     bigint NOT NULL DEFAULT 0,
    stripe_rank        smallint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account, stripe_customer_id)
);
CREATE INDEX customers_email ON customers (lower(email));

CREATE TABLE courses (
    account       text NOT NULL,
    course_id     text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, course_id)
);

CREATE TABLE enrollments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id),
    course_id   text NOT NULL,
    access      text NOT NULL DEFAULT 'active' CHECK (access IN ('active', 'revoked')),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    UNIQUE (customer_id, course_id)
);

CREATE TABLE subscriptions (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account                text NOT NULL,
    stripe_subscription_id text NOT NULL,
    stripe_customer_id     text,
    customer_id            text REFERENCES customers (id),
    course_id              text,
    status                 text NOT NULL,
    pause_collection       jsonb,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    cancel_at              timestamptz,
    canceled_at            timestamptz,
    ended_at               timestamptz,
    current_period_end     timestamptz,
    stripe_created         bigint NOT NULL DEFAULT 0,
    stripe_rank            smallint NOT NULL DEFAULT 0,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account, stripe_subscription_id)
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);

-- A payment is keyed by its charge. Until the charge is known (a Checkout Session or a
-- basil invoice names only a payment intent or an invoice) the row is a placeholder keyed
-- by the payment intent or the invoice, and the charge adopts it when it arrives.
CREATE TABLE payments (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account                  text NOT NULL,
    customer_id              text REFERENCES customers (id),
    stripe_customer_id       text,
    stripe_charge_id         text,
    stripe_payment_intent_id text,
    stripe_invoice_id        text,
    stripe_subscription_id   text,
    course_id                text,
    amount                   bigint NOT NULL DEFAULT 0,
    currency                 text,
    charge_status            text NOT NULL DEFAULT 'succeeded'
                             CHECK (charge_status IN ('succeeded', 'failed', 'pending')),
    amount_refunded          bigint NOT NULL DEFAULT 0,
    status                   text NOT NULL DEFAULT 'succeeded',
    created                  timestamptz,
    stripe_created           bigint NOT NULL DEFAULT 0,
    stripe_rank              smallint NOT NULL DEFAULT 0,
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payments_charge ON payments (account, stripe_charge_id) WHERE stripe_charge_id IS NOT NULL;
CREATE UNIQUE INDEX payments_pi_placeholder ON payments (account, stripe_payment_intent_id)
    WHERE stripe_charge_id IS NULL AND stripe_payment_intent_id IS NOT NULL;
CREATE UNIQUE INDEX payments_invoice_placeholder ON payments (account, stripe_invoice_id)
    WHERE stripe_charge_id IS NULL AND stripe_payment_intent_id IS NULL AND stripe_invoice_id IS NOT NULL;
CREATE INDEX payments_pi ON payments (account, stripe_payment_intent_id);
CREATE INDEX payments_invoice ON payments (account, stripe_invoice_id);
CREATE INDEX payments_customer ON payments (customer_id);

CREATE TABLE refunds (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account          text NOT NULL,
    stripe_refund_id text NOT NULL,
    stripe_charge_id text,
    payment_id       bigint REFERENCES payments (id),
    amount           bigint NOT NULL,
    currency         text,
    status           text NOT NULL,
    reason           text,
    origin           text NOT NULL DEFAULT 'stripe' CHECK (origin IN ('teachery', 'stripe')),
    stripe_created   bigint NOT NULL DEFAULT 0,
    stripe_rank      smallint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account, stripe_refund_id)
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE INDEX refunds_charge ON refunds (account, stripe_charge_id);

-- Course links learned before the payment or subscription they belong to (a Checkout
-- Session names the course; the charge that pays for it may come first or later).
CREATE TABLE course_hints (
    account   text NOT NULL,
    object_id text NOT NULL,
    course_id text NOT NULL,
    PRIMARY KEY (account, object_id)
);

CREATE TABLE activity (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     text REFERENCES customers (id),
    account         text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL DEFAULT now(),
    kind            text NOT NULL,
    message         text NOT NULL,
    origin          text NOT NULL CHECK (origin IN ('stripe', 'teachery', 'reconciliation')),
    stripe_event_id text,
    record_type     text,
    record_id       text
);
CREATE INDEX activity_customer ON activity (customer_id, at, id);
CREATE INDEX activity_event ON activity (stripe_event_id) WHERE stripe_event_id IS NOT NULL;

DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX customers_name_trgm ON customers USING gin (lower(name) gin_trgm_ops);
    CREATE INDEX customers_email_trgm ON customers USING gin (lower(email) gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm unavailable; customer search falls back to a scan';
END $$;

-- ISO 8601 UTC, as the API shows every time.
CREATE FUNCTION iso_utc(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;
