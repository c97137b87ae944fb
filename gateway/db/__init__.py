"""Persistence: the engine, the mapped tables, and migrations."""
