"""Prometheus metrics: the metric objects, how `gateway serve` shares them across its
worker processes, and GET /metrics for the scraper."""
