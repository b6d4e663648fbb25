"""gunicorn settings for Matchmaker's web nodes: ``gunicorn wsgi:app`` in the repository root reads this file
(or ``gunicorn -c /path/to/gunicorn.conf.py wsgi:app``). Every setting can be overridden on the command line.
See docs/deploy.md for the environment of a production node.

Hooks are kept in separately named functions (``_prometheus_*``) so other start-up work can be added to the
same gunicorn hooks without mixing concerns.
"""
import glob
import os
import tempfile

bind = os.environ.get("MATCHMAKER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("MATCHMAKER_WEB_WORKERS", "4"))
# a ranking on a busy 2-core box can take seconds; the default 30 s would kill workers that are only slow
timeout = int(os.environ.get("MATCHMAKER_WEB_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
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


def on_starting(server):
    _prometheus_fresh_dir(server)


def child_exit(server, worker):
    _prometheus_child_exit(server, worker)
