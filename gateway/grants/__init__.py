"""Access grants: an account, a model, a tier and a window of time."""
