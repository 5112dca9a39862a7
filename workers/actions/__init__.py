"""The admin actions: one handler per admin command (workers/commands.py), each listed in
COMMAND_HANDLERS (workers/command_table.py). idempotency.py is how every one of them runs."""
