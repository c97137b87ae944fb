"""Structured access: services verify grantees' API keys, spend their rate limits and
credits, and report the API use that gates and reports read."""
