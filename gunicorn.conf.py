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
# the app writes one structured line per request itself (MATCHMAKER_ACCESS_LOG, with the request id);
# gunicorn's own messages go to stderr (journald under systemd)
accesslog = None
errorlog = "-"

# -- Prometheus: the counters of every worker add up (prometheus_client multiprocess mode) ------------------
# The folder must be known before the app (and so prometheus_client) is imported in any worker.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="matchmaker-prometheus-")


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
