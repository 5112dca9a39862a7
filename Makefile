.PHONY: dev test

# Set up everything and run the service locally (embedded PostgreSQL/Redis when none are configured).
dev:
	bash scripts/dev.sh

# Run the tests against real PostgreSQL and Redis (started or installed when missing).
test:
	bash scripts/test.sh
