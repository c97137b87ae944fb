"""Credentials: API keys and signed download tokens."""
