"""Does /metrics export what an operator needs (request latency by endpoint, rankings, cache lookups, texts
embedded, job queue depth read at scrape time), and only to whom it should?"""
from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from matchmaker.core import metrics
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.indexing import queue as index_queue
from matchmaker.notifications import mail
from matchmaker.notifications.operations import notify

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def scrape(client, **kwargs) -> dict[tuple, float]:
    """The samples of one scrape, as {(name, sorted labels): value}."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for s in family.samples}


def value(samples, name, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_request_latency_is_counted_per_endpoint(client):
    """After two requests to the login page, has the latency histogram of that endpoint (not of its URL)
    two more observations, with a 404 counted under one label for every unknown URL?"""
    key = {"endpoint": "accounts.login", "method": "GET", "status": "200"}
    before = value(scrape(client), "matchmaker_request_seconds_count", **key) or 0
    client.get("/login")
    client.get("/login?next=/my")
    client.get("/no-such-page-1")
    client.get("/no-such-page-2")
    samples = scrape(client)
    assert value(samples, "matchmaker_request_seconds_count", **key) == before + 2
    assert value(samples, "matchmaker_request_seconds_sum", **key) > 0
    unmatched = {"endpoint": "<unmatched>", "method": "GET", "status": "404"}
    assert value(samples, "matchmaker_request_seconds_count", **unmatched) >= 2
    assert not any("no-such-page" in str(labels) for _name, labels in samples)


def test_counters_the_engine_and_caches_increment_are_exported(client):
    """Are the counters other parts of the app increment (rankings, cache lookups, texts embedded) in the
    scrape, with their increments?"""
    before = scrape(client)
    metrics.RANKINGS.labels("capabilities_for_need").inc()
    metrics.CACHE_LOOKUPS.labels("ranking", "hit").inc(3)
    metrics.EMBEDDED_TEXTS.inc(5)
    after = scrape(client)
    for name, labels, step in (("matchmaker_rankings_total", {"kind": "capabilities_for_need"}, 1),
                               ("matchmaker_cache_lookups_total", {"cache": "ranking", "result": "hit"}, 3),
                               ("matchmaker_embedded_texts_total", {}, 5)):
        assert value(after, name, **labels) == (value(before, name, **labels) or 0) + step


def test_job_queue_depth_is_read_from_the_database_at_scrape_time(client, make, app, monkeypatch):
    """Does the queue-depth gauge show the unsent mail and the pending index jobs as committed right now, and
    fall back to 0 once they are done?"""
    monkeypatch.setitem(app.config, "MAIL_WORKER", "external")
    before = scrape(client)
    base = {q: value(before, "matchmaker_job_queue_depth", queue=q) for q in ("mail", "index")}
    user = make.user(Role.EXPERT)
    notify([user, make.user(Role.EXPERT)], "pairing.proposed", "配对建议")
    index_queue.enqueue(db.session, "need", 12345)
    db.session.commit()
    samples = scrape(client)
    assert value(samples, "matchmaker_job_queue_depth", queue="mail") == base["mail"] + 2
    assert value(samples, "matchmaker_job_queue_depth", queue="index") == base["index"] + 1
    assert mail.send_batch("test") >= 2
    index_queue.settle(db.session, index_queue.pending_ids(db.session))
    samples = scrape(client)
    assert value(samples, "matchmaker_job_queue_depth", queue="mail") == 0
    assert value(samples, "matchmaker_job_queue_depth", queue="index") == 0


def test_a_failing_scrape_callback_does_not_break_the_scrape(client):
    """When one scrape-time reader fails (say its table is unreachable), is the rest still served?"""
    def broken():
        raise RuntimeError("unreachable")
    metrics.on_scrape(broken)
    try:
        assert value(scrape(client), "matchmaker_embedded_texts_total") is not None
    finally:
        metrics._scrape_callbacks.remove(broken)


@pytest.mark.parametrize("environ", [
    {"REMOTE_ADDR": "10.1.2.3"},  # another machine, straight to gunicorn
    # another machine, through the local proxy (ProxyFix put the proxied client in REMOTE_ADDR)
    {"REMOTE_ADDR": "203.0.113.9", "werkzeug.proxy_fix.orig": {"REMOTE_ADDR": "127.0.0.1"}},
    # another machine pretending, with X-Forwarded-For: 127.0.0.1, to be local
    {"REMOTE_ADDR": "127.0.0.1", "werkzeug.proxy_fix.orig": {"REMOTE_ADDR": "10.1.2.3"}},
])
def test_without_a_token_only_this_machine_reads_metrics(client, environ):
    """Without a metrics token, is a request from anywhere but loopback refused with a 403 and its reason?"""
    response = client.get("/metrics", environ_base=environ)
    assert response.status_code == 403 and "error" in response.get_json()
    assert "matchmaker_" not in response.get_data(as_text=True)


def test_with_a_token_any_address_that_sends_it_reads_metrics(client, app, monkeypatch):
    """With MATCHMAKER_METRICS_TOKEN set, does a bearer token open /metrics from another machine, while no
    token or a wrong one is refused even from loopback?"""
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "t0ken-for-prometheus")
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", environ_base=LOCAL).status_code == 403
    assert client.get("/metrics", environ_base=remote,
                      headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer t0ken-for-prometheus"})
    assert ok.status_code == 200 and re.search(r"^matchmaker_embedded_texts_total ", ok.get_data(as_text=True),
                                               re.M)
