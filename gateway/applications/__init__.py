"""Access applications: apply, review, decide, renew."""
