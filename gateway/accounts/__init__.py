"""Accounts: who may apply, hold grants and operate the gateway."""
