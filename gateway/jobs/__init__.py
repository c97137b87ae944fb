"""Scheduled work. The scheduler only decides *when*; each job is an ordinary service call."""
