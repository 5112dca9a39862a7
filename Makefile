.PHONY: dev test test-fast test-all

# Set up everything and run the service locally (embedded PostgreSQL/Redis when none are configured).
dev:
	bash scripts/dev.sh

# Run the tests against real PostgreSQL and Redis (started or installed when missing); what CI runs.
# Everything but the tests marked slow (about ten minutes on two cores).
test:
	bash scripts/test.sh

# Unit and integration tests only (about a minute): while you work.
test-fast:
	bash scripts/test.sh tests/unit tests/integration

# Everything, the slow tests too (every history scenario in 20 orders per API version and account).
test-all:
	bash scripts/test.sh -m "slow or not slow"
