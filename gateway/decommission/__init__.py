"""Decommissioning: the announced end of a release's hosting, and the purge after it."""
