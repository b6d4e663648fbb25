"""The load test's building blocks (not the benchmark itself, see scripts/load.sh): the N-times seeder, the
match-page memo that keeps the match page fast under load, and the multi-user mode's plan, client script and
report (scripts/load/multi.py, multi.lua)."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from prometheus_client import REGISTRY

from matchmaker.extensions import db
from matchmaker.listings.models import Capability, Need
from matchmaker.seeding import SEEDS_DIR, load_seeds
from matchmaker.suggestions import cache as match_cache


def _seed_rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (SEEDS_DIR / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _count(model, pattern: str = "%") -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.seed_key.like(pattern)))


def test_scaled_seed_multiplies_listings_and_stays_idempotent():
    """Does --scale 3 give three times the seeded listings, deterministic and different texts, and add
    nothing when run again (plain seed included)?"""
    needs, caps = _seed_rows("needs.jsonl"), _seed_rows("capabilities.jsonl")
    added = load_seeds("Load-test-password-2026", scale=3)
    assert added["needs"] == 3 * len(needs) and added["capabilities"] == 3 * len(caps)
    assert _count(Need, "%-x2") == len(needs) and _count(Capability, "%-x1") == len(caps)
    assert load_seeds("Load-test-password-2026", scale=3) == {k: 0 for k in added}
    assert load_seeds("Load-test-password-2026") == {k: 0 for k in added}

    original = db.session.scalar(select(Need).where(Need.seed_key == needs[0]["key"]))
    variant = db.session.scalar(select(Need).where(Need.seed_key == needs[0]["key"] + "-x1"))
    assert variant.title.endswith(original.title) and variant.title != original.title
    assert variant.background != original.background and variant.status == original.status
    titles = db.session.scalars(select(Capability.title).where(Capability.seed_key.like("%-x%"))).all()
    assert len(set(titles)) == len(titles)  # every generated capability has its own title


def test_plain_seed_adds_no_variants():
    load_seeds("Load-test-password-2026")
    assert _count(Need, "%-x%") == 0 and _count(Need) == len(_seed_rows("needs.jsonl"))


@pytest.mark.nodb
def test_scale_below_one_is_refused():
    with pytest.raises(ValueError):
        load_seeds("Load-test-password-2026", scale=0)


def _ranking_misses() -> float:
    return REGISTRY.get_sample_value("matchmaker_cache_lookups_total", {"cache": "ranking", "result": "miss"}) or 0


def _match_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'match-item" data-id="(\d+)"', html)]


@pytest.mark.slow
def test_match_page_memo_follows_need_edits_and_unpublished_capabilities(matching, docking, client_as,  # noqa: F811
                                                                          world):
    """Is the second view served from the memo, and does the memo give way when the need changes or a
    ranked capability is closed?"""
    from matchmaker.listings import operations as ops

    match_cache.clear()
    url = f"/needs/{docking['need'].id}/matches?lang=en"
    first = client_as("enterprise").get(url)
    assert first.status_code == 200
    misses = _ranking_misses()
    again = client_as("enterprise").get(url)
    assert _match_ids(again.get_data(as_text=True)) == _match_ids(first.get_data(as_text=True))
    assert _ranking_misses() == misses  # served from the memo

    ops.close_listing(docking["right"], world["expert"])
    db.session.commit()
    closed = _match_ids(client_as("enterprise").get(url).get_data(as_text=True))
    assert docking["right"].id not in closed

    need = db.session.get(Need, docking["need"].id)
    ops.update_listing(need, world["enterprise"], {"targets": need.targets + " 成本降低20%。"})
    db.session.commit()
    client_as("enterprise").get(url)
    assert _ranking_misses() > misses


# --- the multi-user mode (scripts/load/multi.py, multi.lua) ---------------------------------------------------

LOAD_DIR = Path(__file__).resolve().parent.parent / "scripts" / "load"


def _multi():
    spec = importlib.util.spec_from_file_location("load_multi", LOAD_DIR / "multi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.nodb
def test_summary_counts_per_page_type_and_judges_writes_by_their_redirect():
    """Does the report give each page type its own count, percentiles and page-cache hits, count a read that
    is not 200 and a write that is not a redirect as errors, and add everything up under "all"?"""
    multi = _multi()
    lines = ([f"browse\t200\t{ms}\t-" for ms in range(1, 101)] + ["browse\t200\t5\thit", "match\t500\t900\t-",
             "match\t200\t300\t-", "write:draft\t303\t40\t-", "write:respond\t200\t30\t-", "garbage line"])
    summary = multi.summarize(lines)
    assert summary["browse"]["requests"] == 101 and summary["browse"]["errors"] == 0
    assert summary["browse"]["p50_ms"] == 50 and summary["browse"]["p95_ms"] == 95 and summary["browse"]["hits"] == 1
    assert summary["match"]["errors"] == 1 and summary["match"]["codes"] == {500: 1}
    assert summary["write:draft"]["errors"] == 0 and summary["write:respond"]["errors"] == 1
    assert summary["all"]["requests"] == 105 and summary["all"]["errors"] == 2 and summary["all"]["max_ms"] == 900
    table = multi.report_table(summary)
    assert table.splitlines()[-1].startswith("| all | 105 | 2 ")
    assert multi.goals(summary, 0, 0.5) == {"0 errors": False, "p95 <= 300 ms": True,
                                            "match/suggestions p95 <= 500 ms": False, "ratio >= 20 %": True}


@pytest.mark.nodb
def test_percentile_is_nearest_rank():
    multi = _multi()
    assert [multi.percentile([3, 1, 2, 4], q) for q in (1, 50, 75, 95, 100)] == [1, 2, 3, 4, 4]


@pytest.mark.nodb
def test_client_lines_refuse_fields_that_would_break_the_file():
    """Is a client written as its C line then its reads and writes, with distinct forwarded addresses, and is a
    tab inside a field (which would shift every later field for the Lua reader) refused?"""
    multi = _multi()
    lines = multi.client_lines("firm", "s=1", multi.forwarded_for(0), "tok", [["home", "/"]],
                               [["draft", "again", "/needs/new", "a=1"]])
    assert lines == ["C\tfirm\ts=1\t10.77.0.1\ttok", "R\thome\t/", "W\tdraft\tagain\t/needs/new\ta=1"]
    assert multi.client_lines("anonymous", "", "x", "", [], [])[0] == "C\tanonymous\t-\tx\t-"
    assert len({multi.forwarded_for(i) for i in range(600)}) == 600
    with pytest.raises(ValueError):
        multi.client_lines("firm", "a\tb", "x", "", [], [])


def test_plan_gives_each_person_own_pages_and_writes_the_app_accepts(app, monkeypatch):
    """On seeded data, does the plan give firms the match pages of their own needs, experts their suggestions,
    enough coordinators (made when missing), and writes that the real pages accept when that person posts them
    (a need draft, an answer to a pairing proposed to the expert, a fair meeting request)?"""
    from matchmaker.accounts.models import User
    from matchmaker.pairings.models import Pairing
    from matchmaker.seeding import seed_demo_activity
    from tests.helpers import login

    load_seeds("Load-test-password-2026")
    seed_demo_activity()
    db.session.commit()
    plan = _multi().build_plan(firms=3, experts=3, coordinators=4, anonymous=2, password="Load-test-password-2026",
                               writes_per_client=2)
    roles = [c["role"] for c in plan]
    assert roles.count("firm") == 3 and roles.count("expert") == 3 and roles.count("coordinator") == 4
    assert roles.count("admin") == 1 and roles.count("anonymous") == 2
    assert len({c["email"] for c in plan if c["email"]}) == 11  # all different people

    users = {c["email"]: db.session.scalar(select(User).where(User.email == c["email"])) for c in plan if c["email"]}
    kinds = {"draft": 0, "respond": 0, "meeting": 0}
    for client in plan:
        if client["role"] == "firm":
            for kind, path in client["reads"]:
                if kind == "match":
                    need = db.session.get(Need, int(path.split("/")[2]))
                    assert need.is_owned_by(users[client["email"]])
        if client["role"] == "expert":
            assert ["suggestions", "/suggestions"] in client["reads"]
        if client["role"] == "anonymous":
            assert client["writes"] == [] and not any(k in ("match", "inbox") for k, _ in client["reads"])
        for kind, _once, path, body in client["writes"]:
            kinds[kind] += 1
            web = login(app.test_client(), users[client["email"]])
            answer = web.post(path + "?lang=en", data=body, content_type="application/x-www-form-urlencoded")
            assert answer.status_code in (302, 303), (kind, answer.status_code, answer.get_data(as_text=True)[:300])
            if kind == "respond":
                pairing = db.session.get(Pairing, int(path.split("/")[2]))
                db.session.refresh(pairing)
                assert pairing.state == "pending_review"
    assert all(kinds.values()), kinds


def _wsgi_recorder(seen: list):
    """A stand-in server for the Lua client: records what each request carried; POSTs answer 303."""
    def app(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
        seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_COOKIE", ""),
                     environ.get("HTTP_X_FORWARDED_FOR", ""), body))
        status = "303 See Other" if environ["REQUEST_METHOD"] == "POST" else "200 OK"
        headers = [("Content-Type", "text/plain"), ("Location", "/")]
        if environ["PATH_INFO"] == "/renew":
            headers.append(("Set-Cookie", "s=renewed; Path=/; HttpOnly"))
        if environ["PATH_INFO"] == "/kept":
            headers.append(("X-Page-Cache", "hit"))
        start_response(status, headers)
        return [b"ok"]
    return app


@pytest.mark.nodb
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_lua_client_plays_one_person_per_connection(tmp_path):
    """Does multi.lua give each wrk connection its own person (cookie, forwarded address), cycle that person's
    pages, send a "once" write one time and an "again" write repeatedly with the CSRF token appended, follow
    the session cookie the server renews, and log every answer with its page type and cache mark?"""
    from werkzeug.serving import make_server

    multi = _multi()
    seen: list = []
    server = make_server("127.0.0.1", 0, _wsgi_recorder(seen), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    lines = (multi.client_lines("firm", "s=alice", "10.0.0.1", "tokA", [["home", "/renew"], ["match", "/kept"]],
                                [["respond", "once", "/answer", "side=capability"], ["draft", "again", "/draft", ""]])
             + multi.client_lines("anonymous", "", "10.0.0.2", "", [["browse", "/browse"]], []))
    clients = tmp_path / "clients.txt"
    clients.write_text("\n".join(lines) + "\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {**os.environ, "CLIENTS_FILE": str(clients), "LOG_DIR": str(logs), "WRITE_EVERY": "3"}
    try:
        subprocess.run(["wrk", "-t2", "-c2", "-d1s", "-s", str(LOAD_DIR / "multi.lua"),
                        f"http://127.0.0.1:{server.server_port}"], env=env, check=True, capture_output=True,
                       timeout=60)
    finally:
        server.shutdown()
    alice = [s for s in seen if s[3] == "10.0.0.1"]
    visitor = [s for s in seen if s[3] == "10.0.0.2"]
    assert alice and visitor and len(alice) + len(visitor) == len(seen)
    assert {s[1] for s in visitor} == {"/browse"} and all(s[2] == "" for s in visitor)
    assert all(s[0] == "GET" for s in visitor)
    posts = [s for s in alice if s[0] == "POST"]
    assert [s[1] for s in posts].count("/answer") == 1 and posts[0] == (
        "POST", "/answer", "s=alice", "10.0.0.1", "side=capability&csrf_token=tokA")
    assert [s[1] for s in posts].count("/draft") >= 2 and posts[1][4] == "csrf_token=tokA"
    assert alice[0][2] == "s=alice" and alice[-1][2] == "s=renewed"
    summary = multi.summarize(multi._logs(logs))
    assert summary["write:respond"]["requests"] == 1 and summary["write:draft"]["errors"] == 0
    assert summary["match"]["hits"] == summary["match"]["requests"] > 0 and summary["home"]["hits"] == 0
    assert len(seen) - 2 <= summary["all"]["requests"] <= len(seen)  # a request in flight at the end has no answer
