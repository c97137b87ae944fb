"""API keys: create, list, revoke, and authenticate requests."""
