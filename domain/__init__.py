"""The model and its persistence: settings, statuses, repositories, SQL and migrations."""
