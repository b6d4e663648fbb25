"""Server CPU per browse page for many different signed-in people, with and without the caches shared across
users (core.sharedcache), and for one session revisiting its pages (the per-session page cache).

    PYTHONPATH=. .venv/bin/python scripts/bench_cache.py [--scale 3] [--rounds 3]

In one process, on a throwaway SQLite database seeded with ``seed --scale N`` (matching off: this measures the
pages, not the engine). Every demo account (firms, experts, coordinators, the administrator) and an anonymous
visitor views each browse page once ("first view": the per-session cache cannot help), then twice more (the
second view keeps the page for the session; the third, "repeat view", is the single-session case). Reported: CPU milliseconds per request (time.process_time around the test
client's request), median over the rounds, for MATCHMAKER_SHARED_CACHE on and off. Runs on an older checkout
too (the setting is then ignored), for before/after figures.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

PAGES = ("/needs", "/capabilities", "/needs?page=2", "/capabilities?kind=instrument", "/needs?industry=new_energy",
         "/needs?lang=en", "/capabilities?q=电池")


def _app(url: str, shared: bool):
    from matchmaker import create_app
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "b" * 48, "MATCHMAKER_MATCHING": False,
                       "MATCHMAKER_INDEX_WORKER": "external", "SHARED_CACHE": shared, "RANKING_WARM": 0,
                       "MATCHMAKER_RATE_LIMITS": False})


def _clients(app):
    from matchmaker.accounts.models import User
    from matchmaker.accounts.sessions import LOGIN_AT, SEEN_AT
    from matchmaker.core.time import utcnow
    from matchmaker.extensions import db
    with app.app_context():
        tokens = [u.session_token for u in db.session.scalars(db.select(User)) if u.is_active]
    clients = [app.test_client()]
    for token in tokens:
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"], session["_fresh"] = token, True
            session[LOGIN_AT] = session[SEEN_AT] = utcnow().timestamp()
        clients.append(client)
    return clients


HITS: list[bool] = []


def _cpu_ms(client, url: str) -> float:
    start = time.process_time()
    response = client.get(url)
    spent = (time.process_time() - start) * 1000
    assert response.status_code == 200, (url, response.status_code)
    HITS.append(response.headers.get("X-Page-Cache") == "hit")
    return spent


def run(url: str, shared: bool) -> dict[str, float]:
    from matchmaker.core import pagecache
    app = _app(url, shared)
    clients = _clients(app)
    with app.app_context():
        pagecache.store().clear()
        try:  # an older checkout has none
            from matchmaker.core import sharedcache
            sharedcache.clear()
        except ImportError:
            pass
    first = [_cpu_ms(c, page) for page in PAGES for c in clients]
    [_cpu_ms(c, page) for page in PAGES for c in clients]
    HITS.clear()
    repeat = [_cpu_ms(c, page) for page in PAGES for c in clients]
    return {"people": len(clients), "first": statistics.mean(first), "first_p50": statistics.median(first),
            "repeat": statistics.mean(repeat), "repeat_hits": sum(HITS) / len(HITS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared", choices=("both", "on", "off"), default="both")
    args = parser.parse_args()
    from flask_migrate import upgrade

    from matchmaker.seeding import load_seeds
    folder = Path(tempfile.mkdtemp(prefix="mm-bench-cache-"))
    url = f"sqlite:///{folder / 'bench.sqlite'}"
    app = _app(url, True)
    with app.app_context():
        upgrade()
        load_seeds("Bench-password-2026", scale=args.scale)
    for shared in {"both": (True, False), "on": (True,), "off": (False,)}[args.shared]:
        runs = [run(url, shared) for _ in range(args.rounds)]
        med = {k: statistics.median(r[k] for r in runs) for k in ("first", "first_p50", "repeat", "repeat_hits")}
        print(f"shared caches {'on ' if shared else 'off'}: {runs[0]['people']} people x {len(PAGES)} browse "
              f"pages; CPU ms/request first view mean {med['first']:.2f} (p50 {med['first_p50']:.2f}), "
              f"repeat view (same session) mean {med['repeat']:.2f} ({med['repeat_hits']:.0%} from the page cache)")


if __name__ == "__main__":
    main()
