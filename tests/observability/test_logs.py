"""Does every request carry a request id (the proxy's, or a new one) in its response and in its log lines,
and are the production logs one JSON object per line?"""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from matchmaker import create_app
from matchmaker.observability.logs import JsonFormatter, RequestIdFilter, make_handler


@pytest.fixture
def access_lines(app, monkeypatch):
    """The JSON lines the access log writes during the test."""
    monkeypatch.setitem(app.config, "ACCESS_LOG", True)
    stream = io.StringIO()
    handler = make_handler("json", stream)
    logger = logging.getLogger("matchmaker.access")
    logger.addHandler(handler)
    monkeypatch.setattr(logger, "level", logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


@pytest.mark.parametrize("offered, kept", [("req-7f3a.91:proxy", True), ("a" * 128, True),
                                          ("a" * 129, False), ('x" injected', False), ("two words", False),
                                          ("", False)])
def test_a_sane_proxy_request_id_is_kept_and_anything_else_replaced(client, offered, kept):
    """Is the proxy's X-Request-ID echoed when it is a bounded printable token, and replaced by a fresh id
    when it is too long, has quotes or spaces, or is missing?"""
    headers = {"X-Request-ID": offered} if offered else {}
    echoed = client.get("/login", headers=headers).headers["X-Request-ID"]
    if kept:
        assert echoed == offered
    else:
        assert echoed != offered and re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_two_requests_without_an_id_get_different_ones(client):
    """Does each request without a proxy id get its own?"""
    assert client.get("/login").headers["X-Request-ID"] != client.get("/login").headers["X-Request-ID"]


def test_the_access_log_is_one_json_object_per_request_with_its_id(client, access_lines):
    """Does each request write one JSON line with its request id, method, path, status, endpoint and
    duration, the id being the one echoed to the client?"""
    response = client.get("/login?lang=en", headers={"X-Request-ID": "from-nginx-1"})
    client.get("/no-such-page")
    first, second = access_lines()
    assert first["request_id"] == response.headers["X-Request-ID"] == "from-nginx-1"
    assert (first["method"], first["path"], first["status"], first["endpoint"]) == ("GET", "/login", 200,
                                                                                     "accounts.login")
    assert first["duration_ms"] >= 0 and first["level"] == "INFO" and first["logger"] == "matchmaker.access"
    assert first["time"].endswith("+00:00")
    assert second["status"] == 404 and second["request_id"] != first["request_id"]


def test_an_error_with_a_traceback_stays_on_one_line(app):
    """Is a logged exception (a multi-line traceback, Chinese text) still exactly one JSON line, with the
    request id of the request it happened in?"""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("matchmaker.test_logs")
    logger.addHandler(handler)
    try:
        with app.test_request_context("/"):
            from flask import g
            g.request_id = "rid-42"
            try:
                raise ValueError("第一行\n第二行")
            except ValueError:
                logger.exception("发送失败 %s", "x@example.test")
        logger.error("outside a request")
    finally:
        logger.removeHandler(handler)
    inside, outside = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert inside["request_id"] == "rid-42" and inside["message"] == "发送失败 x@example.test"
    assert "ValueError: 第一行\n第二行" in inside["exc"] and "Traceback" in inside["exc"]
    assert "request_id" not in outside


def test_an_unknown_log_format_is_refused_at_start(app):
    """Does the app refuse to start with a MATCHMAKER_LOG_FORMAT it does not know?"""
    with pytest.raises(RuntimeError, match="MATCHMAKER_LOG_FORMAT"):
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                    "SECRET_KEY": "x" * 40, "MATCHMAKER_MATCHING": False, "LOG_FORMAT": "xml"})
