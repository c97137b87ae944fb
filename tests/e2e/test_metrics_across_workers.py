"""`gateway serve --workers 2`: every worker's counts are in one scrape, whichever worker
answers it, and files left by an earlier run are gone before the workers start."""

from __future__ import annotations

from pathlib import Path

import httpx2
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.served import clean_env, serving

ROUTE = "/.well-known/release-signing-key.pem"
LABELS = {"route": ROUTE, "status": "2xx"}
# Enough fresh connections that the kernel hands some to each worker.
MOST_REQUESTS = 400


def scraped(base: str) -> float:
    """The requests to ROUTE that a scrape reports."""
    response = httpx2.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "gateway_http_requests_total" and sample.labels == LABELS
    )


def by_process(folder: Path) -> dict[str, float]:
    """The requests to ROUTE that each process wrote to its own file, by pid."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        pid = path.stem.removeprefix("counter_")
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):
            for sample in metric.samples:
                if sample.name == "gateway_http_requests_total" and sample.labels == LABELS:
                    counts[pid] = sample.value
    return counts


def test_a_scrape_sums_the_counts_of_both_workers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = home / "metrics"
    folder.mkdir(parents=True)
    stale = folder / "counter_1.db"
    stale.write_bytes(b"left by an earlier run, and not a metrics file at all")
    env = clean_env(GATEWAY_HOME=str(home), GATEWAY_SCHEDULER="off")
    with serving(env, tmp_path / "serve.log", extra=["--workers", "2"]) as base:
        assert not stale.exists()
        made = 0
        workers: dict[str, float] = {}
        while len(workers) < 2 and made < MOST_REQUESTS:
            for _ in range(20):
                # A connection each: a kept-alive one would stay with one worker.
                assert httpx2.get(f"{base}{ROUTE}", timeout=10).status_code == 200
                made += 1
            workers = {pid: n for pid, n in by_process(folder).items() if n}
        assert len(workers) == 2, f"one worker answered all {made} requests"
        assert sum(workers.values()) == made
        # Answered by one worker, the scrape has both workers' counts.
        assert scraped(base) == made
        assert scraped(base) == made
