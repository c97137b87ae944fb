"""Enforcement against accounts: warnings, suspensions, terminations and their appeals."""
