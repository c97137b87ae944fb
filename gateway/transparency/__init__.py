"""Transparency reports: built from the evidence log, reviewed, published and signed."""
