"""``/metrics``: Prometheus exposition of ``core/metrics.py``.

Who may read it: with ``MATCHMAKER_METRICS_TOKEN`` set, a request carrying ``Authorization: Bearer <token>``
(from any address: a Prometheus server on another machine); without a token, only a request from this machine
(loopback), and through a reverse proxy only when the proxied client is on loopback too (so a request from
outside that the local proxy forwards is refused, and so is an ``X-Forwarded-For: 127.0.0.1`` sent straight
to gunicorn from elsewhere). Anything else: 403 with the reason in JSON.

Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` the counters and histograms add up over every worker
(prometheus_client's multiprocess mode; ``gunicorn.conf.py`` prepares the folder and drops a dead worker's
live gauges). The job-queue gauges are read from the database at scrape time by the process answering, and
every callback registered with ``core.metrics.on_scrape`` runs first (e.g. the index sequence lag).
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os

from flask import Blueprint, Response, current_app, jsonify, request
from flask_babel import gettext as _
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy.orm import Session

from ..core import metrics
from ..extensions import csrf, db

bp = Blueprint("observability", __name__)
log = logging.getLogger(__name__)


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def may_read_metrics() -> bool:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        offered = request.headers.get("Authorization", "")
        return offered.startswith("Bearer ") and hmac.compare_digest(offered[7:].strip().encode(),
                                                                     token.encode())
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR", request.remote_addr)
    return _loopback(peer) and _loopback(request.remote_addr)


def read_queue_depths() -> None:
    """Set the job-queue gauges from the database (pending index jobs, unsent mail)."""
    from ..indexing import queue as index_queue
    from ..notifications.mail import queue_depth
    with Session(db.engine, join_transaction_mode="create_savepoint") as session:
        metrics.JOB_QUEUE_DEPTH.labels("index").set(index_queue.counts(session)["pending"])
        metrics.JOB_QUEUE_DEPTH.labels("mail").set(queue_depth(session))


metrics.on_scrape(read_queue_depths)


@bp.get("/metrics")
@csrf.exempt
def metrics_endpoint():
    """Prometheus metrics of this node (all gunicorn workers together)."""
    if not may_read_metrics():
        return jsonify(error=_("Metrics are readable from this machine, or with the metrics token.")), 403
    metrics.run_scrape_callbacks()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
