"""The composition root and the command line of teachery-sync."""
