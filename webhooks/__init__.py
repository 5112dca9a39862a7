"""The HTTP edge: create_app(settings), the Stripe receiver, the admin API and health checks."""
