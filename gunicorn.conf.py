"""gunicorn settings for Matchmaker (read from the working directory: ``gunicorn wsgi:app``).

Each worker loads the matching engine (the embedding model, then FAISS and BM25 from the vectors stored in the
database) as soon as it starts, in a background thread, instead of on a user's first search: ``/healthz``
answers at once, ``/readyz`` answers 503 until the worker can rank, then 200.

Why not ``preload_app`` and load once in the master? torch and the USE model start thread pools when they
load; a fork after that leaves the children with pools whose threads do not exist (hangs in the first
encode), and the model's pages are written to as soon as the allocator touches them, so the sharing would
not last anyway. The master imports no model; each worker loads its own after the fork (see
docs/benchmarks.md, "Process start", for the time and memory it costs).

Other hooks may be added here (metrics, logging); keep each in its own clearly named function and call them
from the gunicorn hook functions at the bottom.
"""
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# the first model load on a busy machine can take longer than gunicorn's default 30 s; it runs beside the
# worker's main loop, which keeps answering the arbiter's heartbeat, so the usual timeout stays
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
preload_app = False


def load_matching_engine_in_worker(worker) -> None:
    """Start loading this worker's matching engine now (background thread; matching_service.start_loading)."""
    from matchmaker.matching_service import start_loading
    start_loading(worker.wsgi)


def post_worker_init(worker):
    load_matching_engine_in_worker(worker)
