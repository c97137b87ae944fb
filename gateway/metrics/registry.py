"""The gateway's metric objects, and nothing else: the hot paths import this module, so
it imports prometheus_client alone.

Rules of this module:
- Every name starts with `gateway_`; labels take few, bounded values: route templates
  (never raw paths), status classes, access reasons, cache and job names.
- prometheus_client chooses where values live when it is first imported: in this
  process's memory, or in files under PROMETHEUS_MULTIPROC_DIR that every worker of
  `gateway serve --workers N` writes and any of them reads (gateway/metrics/processes.py).
  Modules that `gateway serve`'s own process loads before it sets that variable (the
  caches, the job runner) therefore import this one inside functions, never at the top.
- What is only true at the moment of a scrape (the sealing lag) is not kept here: the
  scrape reads it (gateway/metrics/service.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "gateway_http_requests",
    "HTTP requests answered, by route template and status class (2xx, 4xx, ...).",
    ["route", "status"],
)
# From 1 ms (a cached manifest) to a minute: the time runs until the last byte is sent,
# so a download the gateway streams itself counts its transfer.
REQUEST_SECONDS = Histogram(
    "gateway_http_request_duration_seconds",
    "Time from a request reaching the app to its answer's last byte, by route template and "
    "status class.",
    ["route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ACCESS_REFUSALS = Counter(
    "gateway_access_refusals",
    "Requests refused with an access reason (stages.access.Reason); reason="
    '"quota_exhausted" counts quota exhaustion.',
    ["reason"],
)
CACHE_LOOKUPS = Counter(
    "gateway_cache_lookups",
    "Reads through the per-process caches: result is hit, miss (read from the database) "
    "or bypass (caches off, or not hearing of changes).",
    ["cache", "result"],
)
JOB_RUNS = Counter(
    "gateway_job_runs",
    "Scheduled job runs, failed ones included (a run skipped for another process's lock "
    "is not one).",
    ["job"],
)
JOB_FAILURES = Counter("gateway_job_failures", "Scheduled job runs that failed.", ["job"])
# Per process: under several workers each live worker's own values, by pid; a stopped
# worker's are dropped (gateway/metrics/processes.py).
POOL_CHECKED_OUT = Gauge(
    "gateway_db_pool_checked_out",
    "Database connections this process has taken from its pool.",
    multiprocess_mode="liveall",
)
POOL_SIZE = Gauge(
    "gateway_db_pool_size",
    "Connections this process's pool keeps (it may open up to its overflow beyond).",
    multiprocess_mode="liveall",
)

# The metrics a scrape adds to the ones above, read at the moment of the scrape.
SEALING_LAG = "gateway_evidence_sealing_lag_seconds"
