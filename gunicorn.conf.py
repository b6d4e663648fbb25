"""gunicorn settings for Matchmaker's web nodes: ``gunicorn wsgi:app`` in the repository root reads this file
(or ``gunicorn -c /path/to/gunicorn.conf.py wsgi:app``). Every setting can be overridden on the command line.
See docs/deploy.md for the environment of a production node.

Each worker loads the matching engine (the embedding model, then FAISS and BM25 from the vectors stored in the
database) as soon as it starts, in a background thread, instead of on a user's first search: ``/healthz``
answers at once, ``/readyz`` answers 503 until the worker can rank, then 200.

Why not ``preload_app`` and load once in the master? torch and the USE model start thread pools when they
load; a fork after that leaves the children with pools whose threads do not exist (hangs in the first
encode), and the model's pages are written to as soon as the allocator touches them, so the sharing would
not last anyway. The master imports no model; each worker loads its own after the fork (see
docs/benchmarks.md, "Process start", for the time and memory it costs).

Hooks are kept in separately named functions (``_prometheus_*``, ``load_matching_engine_in_worker``) and
called from the gunicorn hook functions at the bottom, so start-up concerns do not mix.
"""
import glob
import os
import tempfile

bind = os.environ.get("MATCHMAKER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("MATCHMAKER_WEB_WORKERS", "4"))
# a ranking on a busy 2-core box can take seconds; the default 30 s would kill workers that are only slow.
# The first model load runs beside the worker's main loop, which keeps answering the arbiter's heartbeat.
timeout = int(os.environ.get("MATCHMAKER_WEB_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
preload_app = False
# gunicorn >= 25's control socket (gunicornc) would be made under $HOME, read-only under systemd: not used
control_socket_disable = True
# the app writes one structured line per request itself (MATCHMAKER_ACCESS_LOG, with the request id);
# gunicorn's own messages go to stderr (journald under systemd)
accesslog = None
errorlog = "-"


def _json_logs_wanted() -> bool:
    default = "json" if os.environ.get("MATCHMAKER_ENV") == "production" else "text"
    return os.environ.get("MATCHMAKER_LOG_FORMAT", default) == "json"


if _json_logs_wanted():  # gunicorn's own lines in the app's format: one JSON object per line
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "matchmaker.observability.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": []},  # the app installs its own (observability/logs.py)
        # gunicorn's access lines stay off (the app's carry the request id); --access-logfile turns them on
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
                    "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False}},
    }

# -- Prometheus: the counters of every worker add up (prometheus_client multiprocess mode) ------------------
# The folder must be known before the app (and so prometheus_client) is imported in any worker.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="matchmaker-prometheus-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)  # before anything imports prometheus_client


def _prometheus_fresh_dir(server):
    """At master start: remove the figures of an earlier run (they would be added to this run's)."""
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for path in glob.glob(os.path.join(folder, "*.db")):
        os.remove(path)
    server.log.info("prometheus multiprocess folder: %s", folder)


def _prometheus_child_exit(server, worker):
    """A worker exited: its live gauges (e.g. the index sequence lag) no longer count."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def load_matching_engine_in_worker(worker) -> None:
    """Start loading this worker's matching engine now (background thread; matching_service.start_loading)."""
    from matchmaker.matching_service import start_loading
    start_loading(worker.wsgi)


def on_starting(server):
    _prometheus_fresh_dir(server)


def post_worker_init(worker):
    load_matching_engine_in_worker(worker)


def child_exit(server, worker):
    _prometheus_child_exit(server, worker)
