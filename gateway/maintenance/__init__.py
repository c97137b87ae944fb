"""Keeping the gateway itself: its settings, its database schema and its policy files."""
