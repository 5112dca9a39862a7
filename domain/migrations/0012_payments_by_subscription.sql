-- Payments by subscription: payments.link_course (every payload that names a course: a charge, an
-- invoice, a subscription) matches a payment by any of its charge, payment intent, invoice or
-- subscription id. The other three have an index each; without this one the OR could not be a BitmapOr
-- and read every payment of the account (5 ms per call at 14,000 payments, three calls per charge a
-- reconciliation imports; at 0.1 ms with it).
CREATE INDEX payments_subscription ON payments (account, stripe_subscription_id)
    WHERE stripe_subscription_id IS NOT NULL;
