"""`python -m teachery_sync.cli`: the same command line (how child processes are started)."""
from teachery_sync.cli import main

main()
