-- teachery-sync: which invoice and subscription a charge, payment intent or invoice belongs to, as
-- learned from whichever payload said it. A failed attempt (charge.failed) names at most its payment
-- intent; invoice.payment_failed, invoice.paid or invoice_payment.paid name the invoice and the
-- subscription. Since basil neither a charge nor a payment intent names its invoice at all.
CREATE TABLE payment_links (
    account         text NOT NULL,
    object_id       text NOT NULL,
    invoice_id      text,
    subscription_id text,
    PRIMARY KEY (account, object_id)
);
