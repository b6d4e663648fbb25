"""Server CPU per rendered page, by page type, in one process (no HTTP server, no other clients): the figure
behind "server CPU per uncached rendered listing or browse page" (issue 18), and where it goes.

  DATABASE_URL=… MATCHMAKER_INDEX_DIR=… python scripts/load/pagecpu.py [--user EMAIL] [--rounds N]
      [--profile DIR] [--only TYPE,…]

Signs in through the login form (Flask's test client) as --user (default the demo firm; "-" for an anonymous
visitor), with the page cache off, then for each page type requests its distinct pages once (the cold pass:
first views, filling the per-process memos: rankings, browse counts, the embedding model) and then --rounds
more times (the warm passes: every page rendered afresh, what a second person viewing the page costs without
a page cache). Prints CPU ms per request (time.process_time of this process: Python, templates, the database
driver; the database server's own CPU is not in it) and SQL statements per request. --profile DIR writes a
pyinstrument text profile of the warm passes per page type to DIR/<type>.txt.

  py-spy record --format raw -r 500 -o RAW -- python scripts/load/pagecpu.py --only browse,listing
  python scripts/load/pagecpu.py --top RAW [--lines N]
      the share of on-CPU samples (waits on the database left out) under each function of the app, its
      templates, SQLAlchemy's session and psycopg: where an uncached page's CPU goes (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from sqlalchemy import event, select

PAGE_TYPES = ("browse", "search", "listing", "match", "home", "suggestions", "pairings", "inbox", "my")


def pages(user_email: str | None) -> dict[str, list[str]]:
    from matchmaker.core.enums import HubCity, Industry, ListingStatus, Visibility
    from matchmaker.extensions import db
    from matchmaker.listings.models import Capability, Need

    published = Need.status == ListingStatus.PUBLISHED
    needs = db.session.scalars(select(Need.id).where(published, Need.deleted_at.is_(None),
                                                     Need.visibility == Visibility.PUBLIC).order_by(Need.id)).all()
    caps = db.session.scalars(select(Capability.id).where(Capability.status == ListingStatus.PUBLISHED,
                                                          Capability.deleted_at.is_(None)).order_by(Capability.id)).all()
    urls = {
        "browse": ([f"/needs?page={p}" for p in range(1, 6)] + [f"/capabilities?page={p}" for p in range(1, 6)]
                   + [f"/needs?industry={i}" for i in Industry.values()[:5]]
                   + [f"/capabilities?hub_city={h}" for h in HubCity.values()[:5]]),
        "search": ["/needs?q=%E9%BD%BF%E8%BD%AE", "/capabilities?q=battery", "/needs?q=%E6%A3%80%E6%B5%8B&page=2",
                   "/capabilities?q=%E6%9D%90%E6%96%99", "/needs?q=sensor"],
        "listing": [f"/needs/{i}" for i in needs[::max(1, len(needs) // 15)][:15]]
                   + [f"/capabilities/{i}" for i in caps[::max(1, len(caps) // 15)][:15]],
        "home": ["/"],
    }
    if user_email:
        from matchmaker.accounts.models import User
        user = db.session.scalar(select(User).where(User.email == user_email))
        own = [n.id for n in db.session.scalars(select(Need).where(published, Need.organization_id.in_(
            user.organization_ids)).order_by(Need.id))] if user.organization_ids else []
        if own:
            urls["match"] = [f"/needs/{i}/matches" for i in own[:6]]
        if user.expert_profile is not None:
            urls["suggestions"] = ["/suggestions"]
        urls.update({"pairings": ["/pairings"], "inbox": ["/inbox"], "my": ["/my"]})
    return urls


def sign_in(client, email: str, password: str) -> None:
    page = client.get("/login?lang=en")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True)).group(1)
    done = client.post("/login", data={"csrf_token": token, "email": email, "password": password})
    if done.status_code not in (302, 303):
        raise SystemExit(f"login refused: HTTP {done.status_code}")


def top(raw: str, lines: int = 40) -> list[str]:
    """Inclusive share of on-CPU samples per function in py-spy's raw (collapsed) output, for the samples
    taken while pages were requested."""
    import collections
    total, waits, inclusive = 0, 0, collections.Counter()
    for line in Path(raw).read_text(encoding="utf-8").splitlines():
        stack, _sep, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any("one_pass" in f for f in frames):
            continue
        if "Connection.wait" in frames[-1]:
            waits += int(count)
            continue
        total += int(count)
        for name in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            inclusive[name] += int(count)
    shown = [f"on-CPU samples {total}, waiting on the database {waits}"]
    keep = ("matchmaker", ".html", "orm/session.py", "render_template", "flask_babel", "url_for", "psycopg/cursor")
    for name, n in inclusive.most_common():
        if any(k in name for k in keep) and len(shown) <= lines:
            shown.append(f"{100 * n / max(total, 1):5.1f}% {name}")
    return shown


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", default="firm@demo.matchmaker.local")
    parser.add_argument("--password", default=os.environ.get("MATCHMAKER_DEMO_PASSWORD", "Matchmaker-demo-2026"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile")
    parser.add_argument("--only")
    parser.add_argument("--top", help="summarise a py-spy raw profile instead of measuring")
    parser.add_argument("--lines", type=int, default=40)
    args = parser.parse_args(argv)
    if args.top:
        print("\n".join(top(args.top, args.lines)))
        return
    os.environ["MATCHMAKER_PAGE_CACHE"] = "0"
    from matchmaker import create_app
    from matchmaker.extensions import db

    app = create_app()
    statements = [0]
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a, **k: statements.__setitem__(0, statements[0] + 1))
        email = None if args.user == "-" else args.user
        urls = pages(email)
    client = app.test_client()
    if email:
        sign_in(client, email, args.password)
    wanted = args.only.split(",") if args.only else [t for t in PAGE_TYPES if t in urls]
    print(f"user {args.user}; page cache off; cold = first view in this process, warm = the mean of "
          f"{args.rounds} more views of each page, rendered afresh")
    print("| page type | pages | cold CPU ms | warm CPU ms | warm wall ms | SQL per page (warm) |")
    print("|---|---|---|---|---|---|")
    for kind in wanted:
        if kind not in urls:
            continue

        def one_pass(list_of_urls):
            for url in list_of_urls:
                response = client.get(url)
                if response.status_code != 200:
                    raise SystemExit(f"{url}: HTTP {response.status_code}")

        cpu0 = time.process_time()
        one_pass(urls[kind])
        cold = (time.process_time() - cpu0) * 1000 / len(urls[kind])
        profiler = None
        if args.profile:
            from pyinstrument import Profiler
            profiler = Profiler(interval=0.0005)
            profiler.start()
        sql0, cpu0, wall0 = statements[0], time.process_time(), time.perf_counter()
        for _ in range(args.rounds):
            one_pass(urls[kind])
        n = args.rounds * len(urls[kind])
        warm, wall = (time.process_time() - cpu0) * 1000 / n, (time.perf_counter() - wall0) * 1000 / n
        sql = (statements[0] - sql0) / n
        if profiler is not None:
            profiler.stop()
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            Path(args.profile, f"{kind}.txt").write_text(
                profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8")
        print(f"| {kind} | {len(urls[kind])} | {cold:.1f} | {warm:.1f} | {wall:.1f} | {sql:.1f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
