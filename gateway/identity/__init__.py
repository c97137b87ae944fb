"""Identity: local accounts with passwords, one-time links, OIDC sign-in, rate limits."""
