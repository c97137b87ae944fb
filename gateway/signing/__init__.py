"""Signing: release signatures (OpenSSF model_signing)."""
