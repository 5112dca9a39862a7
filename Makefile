.PHONY: dev test test-fast test-all

# Set up everything and run the service locally (embedded PostgreSQL/Redis when none are configured).
dev:
	bash scripts/dev.sh

# Run the tests against real PostgreSQL and Redis (started or installed when missing); what CI runs.
# Everything but the tests marked slow (eleven to eighteen minutes on two cores).
test:
	bash scripts/test.sh

# The tests that need no server (handler logic and pure functions, marked `unit`), in seconds: while you work.
# One suite alone: `.venv/bin/pytest -m integration` (or e2e, blackbox).
test-fast:
	bash scripts/test.sh --fast

# Everything, the slow tests too (every history scenario in 20 orders per API version and account).
test-all:
	bash scripts/test.sh -m "slow or not slow"
