"""Prometheus metrics of this process (served at ``/metrics``).

One home for every metric name, so the domains that count (indexing, matching, caches, jobs) and the
endpoint that reports agree. Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` makes the counters add up over
the workers (prometheus_client's multiprocess mode).
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
INDEX_SEQUENCE_LAG = Gauge("matchmaker_index_sequence_lag", "Vector rows not yet applied by this process.",
                           multiprocess_mode="max")

#: index jobs waiting (pending or claimed), read at scrape time
JOB_QUEUE_DEPTH = Gauge("matchmaker_job_queue_depth", "Jobs waiting in the queue.", ["queue"],
                        multiprocess_mode="max")
