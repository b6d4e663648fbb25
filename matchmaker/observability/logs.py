"""One JSON object per log line (``MATCHMAKER_LOG_FORMAT=json``, the production default) or readable text
(development), each carrying the request id: the proxy's ``X-Request-ID`` when it sends a sane one, else a
new one; either way echoed in the response's ``X-Request-ID`` header. Each request's latency goes to
``core.metrics.REQUEST_SECONDS`` by endpoint, and (``MATCHMAKER_ACCESS_LOG``, default on with JSON logs) one
access line per request."""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

from ..core.metrics import REQUEST_SECONDS

HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")  # printable, no spaces or quotes, bounded
#: attributes every LogRecord has: anything else was passed with ``extra=`` and goes into the JSON object
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}
_HANDLER_MARK = "_matchmaker_handler"
access_log = logging.getLogger("matchmaker.access")


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or "-" outside a request: workers, commands) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, pid, request_id, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                 "pid": record.process}  # which gunicorn worker
        request_id = getattr(record, "request_id", None)
        if request_id and request_id != "-":
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def make_handler(fmt: str, stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(app: Flask) -> None:
    """Install the root handler in the configured format (once per process; the test suite keeps pytest's)."""
    if app.testing:
        return
    root = logging.getLogger()
    if not any(getattr(h, _HANDLER_MARK, False) for h in root.handlers):
        handler = make_handler(app.config.get("LOG_FORMAT", "text"))
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))


def register(app: Flask) -> None:
    """Request id, latency and access-log hooks. Call after any before_request hook that may answer early
    (the page cache): this one goes first, so every request is timed and has an id."""

    if app.config.get("LOG_FORMAT", "text") not in ("json", "text"):
        raise RuntimeError(f"MATCHMAKER_LOG_FORMAT must be json or text, not {app.config['LOG_FORMAT']!r}")

    def start() -> None:
        g.request_started = time.perf_counter()
        offered = request.headers.get(HEADER, "")
        g.request_id = offered if _SANE_ID.match(offered) else uuid.uuid4().hex

    def finish(response):
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[HEADER] = request_id
        started = g.get("request_started")
        if started is not None:
            seconds = time.perf_counter() - started
            endpoint = request.endpoint or "<unmatched>"  # a 404's URL would make an endless label set
            REQUEST_SECONDS.labels(endpoint, request.method, str(response.status_code)).observe(seconds)
            if app.config.get("ACCESS_LOG"):
                access_log.info("%s %s %s", request.method, request.path, response.status_code,
                                extra={"method": request.method, "path": request.path,
                                       "status": response.status_code, "endpoint": endpoint,
                                       "duration_ms": round(seconds * 1000, 2),
                                       "remote_addr": request.remote_addr})
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request(finish)
