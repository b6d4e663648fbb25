"""Prometheus metrics of this process (served at ``/metrics``).

One home for every metric name, so the domains that count (indexing, matching, caches, jobs) and the
endpoint that reports agree. Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` makes the counters add up over
the workers (prometheus_client's multiprocess mode).
"""
from __future__ import annotations

import logging
from typing import Callable

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

#: texts passed to the embedding model by this process (a node that starts from stored vectors adds 0)
EMBEDDED_TEXTS = Counter("matchmaker_embedded_texts_total", "Texts passed to the embedding model by this process.")

#: rankings computed (not answered from a memo), by what was ranked for what ("capabilities_for_need" …)
RANKINGS = Counter("matchmaker_rankings_total", "Rankings computed by the matching engine.", ["kind"])

#: cache lookups by cache ("ranking", "page", "counts" …) and result ("hit", "miss")
CACHE_LOOKUPS = Counter("matchmaker_cache_lookups_total", "Cache lookups.", ["cache", "result"])

#: request latency by endpoint (the Flask endpoint name, not the URL, to keep the label set small)
REQUEST_SECONDS = Histogram("matchmaker_request_seconds", "Request latency.", ["endpoint", "method", "status"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))

#: the newest listing-vector sequence in the database minus the newest one this process has applied
#: (under gunicorn: the largest over the live workers; a dead worker's value is dropped by gunicorn.conf.py)
INDEX_SEQUENCE_LAG = Gauge("matchmaker_index_sequence_lag", "Vector rows not yet applied by this process.",
                           multiprocess_mode="livemax")

#: jobs not done yet by queue ("index": index jobs pending or claimed; "mail": unsent mail), read from the
#: database at scrape time by the process answering (so the most recent value is the true one)
JOB_QUEUE_DEPTH = Gauge("matchmaker_job_queue_depth", "Jobs waiting in the queue.", ["queue"],
                        multiprocess_mode="mostrecent")

_scrape_callbacks: list[Callable[[], None]] = []


def on_scrape(callback: Callable[[], None]) -> Callable[[], None]:
    """Register a function that sets gauges read at scrape time (before ``/metrics`` answers)."""
    if callback not in _scrape_callbacks:
        _scrape_callbacks.append(callback)
    return callback


def run_scrape_callbacks() -> None:
    """Run every scrape-time callback; one that fails is logged and leaves its gauges as they were."""
    for callback in list(_scrape_callbacks):
        try:
            callback()
        except Exception:
            log.exception("metrics: scrape callback %s failed", getattr(callback, "__name__", callback))
