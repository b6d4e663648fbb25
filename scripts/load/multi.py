"""The multi-user load mode's pieces (``scripts/load.sh --multi``): many different people, each seeing pages
for the first time, plus a small share of writes.

  python scripts/load/multi.py prepare PLAN --firms N --experts N --coordinators N --anonymous N
      (inside the app, on the throwaway database) makes sure there are enough coordinator accounts, gives the
      experts pairings to answer and the firms fair meetings to ask for, and writes PLAN (JSON): one entry per
      client with its account, the pages it visits (typed: home, browse, match …) and its writes.
  python scripts/load/multi.py login PLAN HOST PORT PASSWORD CLIENTS
      signs every account in through the real login form (from its own forwarded address, as behind the
      production proxy, so the per-address login limit is not what is measured), reads a CSRF token from a
      signed-in page and writes CLIENTS, the file scripts/load/multi.lua reads.
  python scripts/load/multi.py report LOGDIR [--json OUT]
      per page type: requests, errors, p50/p95/max latency and page-cache hits, from the per-connection logs
      multi.lua wrote.
  python scripts/load/multi.py summary DIR [--check] …
      the run's figures (load.sh calls it): both apps' req/s, latency and server CPU per request, the ratio,
      the per-type table and the issue's goals; also written to DIR/last-run.md.

CLIENTS format (one line each, fields separated by a tab): ``C  role  cookie  forwarded-for  csrf`` starts a
client; ``R  type  path`` is a page it reads (cycled); ``W  type  once|again  path  form-body`` a write (POST,
a redirect is success; ``once`` writes are sent one time, ``again`` ones cycled). The CSRF token is appended
to the form body by the client.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOAD_PREFIX = "load-coordinator"

#: pages whose answers the page cache may keep (what its hit rate is taken over)
CACHEABLE = {"browse", "search", "listing", "match"}


# --- plan (inside the app) -----------------------------------------------------------------------------------

def _browse_urls(rng: random.Random) -> list[tuple[str, str]]:
    from matchmaker.core.enums import HubCity, Industry
    urls = ([("browse", f"/needs?page={p}") for p in range(1, 8)]
            + [("browse", f"/capabilities?page={p}") for p in range(1, 8)]
            + [("browse", f"/needs?industry={i}") for i in Industry.values()]
            + [("browse", f"/capabilities?hub_city={h}") for h in HubCity.values()]
            + [("search", "/needs?q=%E9%BD%BF%E8%BD%AE"), ("search", "/capabilities?q=battery"),
               ("search", "/needs?q=%E6%A3%80%E6%B5%8B&page=2"), ("search", "/capabilities?q=%E6%9D%90%E6%96%99"),
               ("search", "/needs?q=sensor"), ("search", "/capabilities?q=%E7%94%B5%E6%B1%A0")])
    rng.shuffle(urls)
    return urls


def _published(model, public_only: bool = False) -> list:
    from sqlalchemy import select

    from matchmaker.core.enums import ListingStatus, Visibility
    from matchmaker.extensions import db
    query = select(model).where(model.status == ListingStatus.PUBLISHED, model.deleted_at.is_(None))
    if public_only and hasattr(model, "visibility"):
        query = query.where(model.visibility == Visibility.PUBLIC)
    return list(db.session.scalars(query.order_by(model.id)))


def _ensure_coordinators(count: int, password: str) -> list:
    """The seeded coordinators plus generated ones (one per hub city in turn) up to ``count``."""
    from sqlalchemy import select

    from matchmaker.accounts.models import User
    from matchmaker.core.enums import HubCity, Role
    from matchmaker.extensions import db
    from matchmaker.seeding import DEMO_DOMAIN

    def coordinators() -> list:
        users = db.session.scalars(select(User).where(User.email.like(f"%@{DEMO_DOMAIN}")).order_by(User.id))
        return [u for u in users if u.is_active and u.has_role(Role.COORDINATOR)]

    have = coordinators()
    cities = HubCity.values()
    missing = count - len(have)
    if missing > 0:
        password_hash = User.hash_password(password)
        for i in range(len(have), count):
            user = User(seed_key=f"{LOAD_PREFIX}-{i}", email=f"{LOAD_PREFIX}-{i}@{DEMO_DOMAIN}",
                        name=f"负载测试协调员 {i}", locale="zh_CN", password_hash=password_hash)
            user.add_role(Role.COORDINATOR)
            user.roles[-1].hub_city = cities[i % len(cities)]
            db.session.add(user)
        db.session.commit()
        have = coordinators()
    return have[:count]


def _writes_for(firms: list, experts: list, per_client: int) -> dict[int, list[list[str]]]:
    """Writes each account will send: firms post drafts and ask for fair meetings; experts answer pairings
    the firms proposed. Made through the operations, committed; refused ones (capacity, eligibility) are
    skipped."""
    from matchmaker.core.workflow import WorkflowError
    from matchmaker.core.time import utcnow
    from matchmaker.extensions import db
    from matchmaker.fairs import operations as fair_ops
    from matchmaker.fairs.models import Fair
    from matchmaker.pairings import operations as pairing_ops

    writes: dict[int, list[list[str]]] = {u.id: [] for u in firms + experts}
    needs_of = {u.id: [n for n in _published_needs_of(u)] for u in firms}
    caps_of = {u.id: list(_published_caps_of(u)) for u in experts}
    now = utcnow()
    fair = next((f for f in db.session.scalars(db.select(Fair).order_by(Fair.id)) if f.registration_open(now)),
                None)
    for firm in firms:
        org_id = firm.memberships[0].organization_id if firm.memberships else ""
        body = urllib.parse.urlencode({"organization_id": org_id, "title": f"负载测试草稿 {firm.id}",
                                       "industry": "new_energy", "save_draft": "Save draft"})
        writes[firm.id].append(["draft", "again", "/needs/new", body])

    def registered(listing, owner) -> bool:
        try:
            fair_ops.register_listing(fair, listing, owner)
            db.session.commit()
            return True
        except WorkflowError:
            db.session.rollback()
            return bool(getattr(listing, "fair_registrations", None))

    pairs = [(f, e) for f in firms for e in experts]
    random.Random(5).shuffle(pairs)
    answers = {e.id: 0 for e in experts}
    meetings = {f.id: 0 for f in firms}
    for firm, expert in pairs:
        if not needs_of[firm.id] or not caps_of[expert.id]:
            continue
        need, cap = needs_of[firm.id][answers[expert.id] % len(needs_of[firm.id])], caps_of[expert.id][0]
        if answers[expert.id] < per_client:
            try:
                pairing = pairing_ops.propose_pairing(need, cap, by=firm, comment="load test")
                db.session.commit()
                writes[expert.id].append(["respond", "once", f"/pairings/{pairing.id}/respond",
                                          urllib.parse.urlencode({"side": "capability", "decision": "interested",
                                                                  "message": "负载测试：有兴趣"})])
                answers[expert.id] += 1
            except WorkflowError:
                db.session.rollback()
        if fair is not None and meetings[firm.id] < per_client and registered(need, firm) and registered(cap, expert):
            writes[firm.id].append(["meeting", "once", f"/fairs/{fair.id}/requests",
                                    urllib.parse.urlencode({"need_id": need.id, "capability_id": cap.id,
                                                            "message": "负载测试：想约谈"})])
            meetings[firm.id] += 1
    return writes


def _published_needs_of(user) -> list:
    from matchmaker.listings.models import Need
    return [n for n in _published(Need) if n.is_owned_by(user)]


def _published_caps_of(user) -> list:
    from matchmaker.listings.models import Capability
    return [c for c in _published(Capability) if c.expert is not None and c.expert.user_id == user.id]


def build_plan(firms: int, experts: int, coordinators: int, anonymous: int, password: str,
               writes_per_client: int = 4, seed: int = 11) -> list[dict]:
    """One entry per client: role, email (None for a visitor), reads [[type, path]…], writes [[type, once|again,
    path, body]…]. Firms read the match pages of their own needs, experts their own suggestions, coordinators
    the match pages of needs across the site; every signed-in person also browses and reads listings."""
    from sqlalchemy import select

    from matchmaker.accounts.models import User
    from matchmaker.core.enums import Role
    from matchmaker.extensions import db
    from matchmaker.listings.models import Capability, Need
    from matchmaker.seeding import DEMO_DOMAIN

    rng = random.Random(seed)
    needs = _published(Need, public_only=True)
    caps = _published(Capability)
    all_needs = _published(Need)
    if not needs or not caps:
        raise SystemExit("no published listings: seed and publish first")
    by_org: dict[int, list[int]] = {}
    for need in all_needs:
        by_org.setdefault(need.organization_id, []).append(need.id)
    experts_with_caps = {c.expert.user_id for c in caps if c.expert is not None}

    users = list(db.session.scalars(select(User).where(User.email.like(f"%@{DEMO_DOMAIN}")).order_by(User.id)))
    firm_users = [u for u in users if u.is_active and u.has_role(Role.ENTERPRISE)
                  and any(by_org.get(m.organization_id) for m in u.memberships)][:firms]
    expert_users = [u for u in users if u.is_active and u.has_role(Role.EXPERT) and u.id in experts_with_caps][:experts]
    admin = [u for u in users if u.is_active and u.has_role(Role.ADMIN)][:1]
    coordinator_users = _ensure_coordinators(coordinators, password)
    writes = _writes_for(firm_users, expert_users, writes_per_client)

    def listing_pages(n: int) -> list[list[str]]:
        return ([["listing", f"/needs/{rng.choice(needs).id}"] for _ in range(n // 2)]
                + [["listing", f"/capabilities/{rng.choice(caps).id}"] for _ in range(n - n // 2)])

    def mixed(specific: list[list[str]], n_browse: int = 8, n_listing: int = 10) -> list[list[str]]:
        pages = specific + [list(x) for x in _browse_urls(rng)[:n_browse]] + listing_pages(n_listing)
        pages.append(["home", "/"])
        rng.shuffle(pages)
        return pages

    plan = []
    for user in firm_users:
        own = [nid for m in user.memberships for nid in by_org.get(m.organization_id, [])]
        rng.shuffle(own)
        plan.append({"role": "firm", "email": user.email, "writes": writes.get(user.id, []), "reads": mixed(
            [["match", f"/needs/{nid}/matches"] for nid in own[:6]]
            + [["pairings", "/pairings"], ["inbox", "/inbox"], ["my", "/my"], ["vouchers", "/vouchers"],
               ["fairs", "/fairs"], ["challenges", "/challenges"]])})
    for user in expert_users:
        plan.append({"role": "expert", "email": user.email, "writes": writes.get(user.id, []), "reads": mixed(
            [["suggestions", "/suggestions"]] * 4
            + [["pairings", "/pairings"], ["inbox", "/inbox"], ["fairs", "/fairs"], ["my", "/my"]])})
    for user in coordinator_users:
        scoped = [n.id for n in all_needs if user.coordinator_scope.covers(n.hub_city)] or [n.id for n in all_needs]
        plan.append({"role": "coordinator", "email": user.email, "writes": [], "reads": mixed(
            [["match", f"/needs/{nid}/matches"] for nid in rng.sample(scoped, min(6, len(scoped)))]
            + [["review", "/review/"], ["coordinate", "/coordinate"], ["dashboard", "/dashboards"],
               ["pairings", "/pairings"], ["inbox", "/inbox"]])})
    for user in admin:
        plan.append({"role": "admin", "email": user.email, "writes": [], "reads": mixed(
            [["admin", "/admin/users"], ["admin", "/admin/audit"], ["admin", "/admin/"], ["dashboard", "/dashboards"],
             ["inbox", "/inbox"]])})
    for _ in range(anonymous):
        plan.append({"role": "anonymous", "email": None, "writes": [], "reads": mixed(
            [["fairs", "/fairs"], ["challenges", "/challenges"], ["api", "/api/v1/openapi.json"]],
            n_browse=10, n_listing=14)})
    return plan


# --- sign-in (against the running server) ---------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def forwarded_for(index: int) -> str:
    """A distinct private address per client: what the production proxy would pass on."""
    return f"10.77.{index // 250}.{index % 250 + 1}"


def client_lines(role: str, cookie: str, xff: str, csrf: str, reads: list, writes: list) -> list[str]:
    for field in (role, cookie, xff, csrf):
        if "\t" in field or "\n" in field:
            raise ValueError(f"a client field holds a tab or newline: {field!r}")
    lines = ["\t".join(["C", role, cookie or "-", xff, csrf or "-"])]
    lines += ["\t".join(["R", kind, path]) for kind, path in reads]
    lines += ["\t".join(["W", kind, once, path, body]) for kind, once, path, body in writes]
    return lines


def sign_in_all(plan: list[dict], host: str, port: int, password: str) -> list[str]:
    import http.client

    sys.path.insert(0, str(HERE))
    from login import _cookies, login

    lines = []
    for i, client in enumerate(plan):
        xff = forwarded_for(i)
        cookie, csrf = "", ""
        if client["email"]:
            cookie = login(host, port, client["email"], password, forwarded=xff)
            conn = http.client.HTTPConnection(host, port, timeout=60)
            conn.request("GET", "/needs", headers={"Cookie": cookie, "X-Forwarded-For": xff,
                                                   "X-Forwarded-Proto": "https"})
            page = conn.getresponse()
            body = page.read().decode("utf-8", "replace")
            jar = dict(part.split("=", 1) for part in cookie.split("; "))
            jar.update(_cookies(page))
            cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
            token = CSRF.search(body)
            if page.status != 200 or not token:
                raise SystemExit(f"signed-in page for {client['email']}: HTTP {page.status}, no CSRF token")
            csrf = token.group(1)
        lines += client_lines(client["role"], cookie, xff, csrf, client["reads"], client["writes"])
    return lines


# --- report --------------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def summarize(lines) -> dict[str, dict]:
    """Per page type from log lines ``type<TAB>status<TAB>ms<TAB>cache``: requests, errors (a read that is not
    200, a write that is not a redirect), p50/p95/max ms, page-cache hits; plus "all"."""
    rows: dict[str, dict] = {}
    for line in lines:
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 4:
            continue
        kind, status, ms, cache = parts[0], int(parts[1]), float(parts[2]), parts[3]
        ok = status in (302, 303) if kind.startswith("write:") else status == 200
        for key in (kind, "all"):
            row = rows.setdefault(key, {"ms": [], "errors": 0, "hits": 0, "codes": {}})
            row["ms"].append(ms)
            row["hits"] += cache == "hit"
            if not ok:
                row["errors"] += 1
                row["codes"][status] = row["codes"].get(status, 0) + 1
    return {key: {"requests": len(r["ms"]), "errors": r["errors"], "codes": r["codes"], "hits": r["hits"],
                  "p50_ms": percentile(r["ms"], 50), "p95_ms": percentile(r["ms"], 95), "max_ms": max(r["ms"])}
            for key, r in rows.items()}


def report_table(summary: dict[str, dict]) -> str:
    out = ["| page type | requests | errors | p50 ms | p95 ms | max ms | page-cache hits |",
           "|---|---|---|---|---|---|---|"]
    for key in sorted(summary, key=lambda k: (k == "all", k)):
        r = summary[key]
        hits = f"{r['hits']} ({r['hits'] / r['requests']:.0%})" if key in CACHEABLE or key == "all" else "–"
        errors = f"{r['errors']} {r['codes']}" if r["errors"] else "0"
        out.append(f"| {key} | {r['requests']} | {errors} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
                   f"{r['max_ms']:.0f} | {hits} |")
    return "\n".join(out)


def _logs(logdir: Path) -> list[str]:
    return [line for path in sorted(logdir.glob("conn-*.log")) for line in path.read_text(encoding="utf-8").splitlines()]


def _run_figures(d: Path, name: str) -> dict:
    """wrk's summary line, the server's CPU ticks over the run and the client's CPU seconds."""
    wrk = json.loads([line for line in (d / f"multi-{name}.wrk").read_text().splitlines() if line.startswith("{")][-1])
    ticks, hz, client = (d / f"multi-{name}.cpu").read_text().split()
    wrk["server_cpu_s"], wrk["client_cpu_s"] = int(ticks) / int(hz), float(client)
    wrk["rps"] = wrk["requests"] / wrk["duration_s"]
    return wrk


GOALS_TEXT = "0 errors, p95 <= 300 ms, match and suggestion pages p95 <= 500 ms, ratio >= 20 %"


def goals(summary: dict[str, dict], socket_errors: int, ratio: float) -> dict[str, bool]:
    """The issue's targets for the multi-user mode (issue 18)."""
    slow = [summary[k]["p95_ms"] for k in ("match", "suggestions") if k in summary]
    return {"0 errors": summary["all"]["errors"] + socket_errors == 0, "p95 <= 300 ms": summary["all"]["p95_ms"] <= 300,
            "match/suggestions p95 <= 500 ms": all(v <= 500 for v in slow), "ratio >= 20 %": ratio >= 0.20}


def summary_text(d: Path, args) -> tuple[str, bool]:
    mm, ref = _run_figures(d, "matchmaker"), _run_figures(d, "minimal")
    per_type = summarize(_logs(d / "multi-logs" / "matchmaker"))
    ratio = mm["rps"] / ref["rps"]
    met = goals(per_type, mm["socket_errors"], ratio)
    cacheable = [r for k, r in per_type.items() if k in CACHEABLE]
    hits, asked = sum(r["hits"] for r in cacheable), sum(r["requests"] for r in cacheable)
    lines = [
        f"multi-user mode: {args.clients} clients ({Path(d / 'plan.json').exists() and _roles(d / 'plan.json')}), "
        f"{args.duration} s per app, gunicorn -w {args.workers} sync, {args.scale}x demo data (PostgreSQL), page cache "
        f"{'on' if args.page_cache == '1' else 'off'}, one write every {args.write_every} requests of a writing client, "
        f"load average before {args.load_before}, after {args.load_after}",
        "",
        "| app | requests | errors | req/s | p50 ms | p95 ms | p99 ms | server CPU (cores) | server CPU ms/request |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r, errors in (("Matchmaker (mixed pages, many people)", mm, per_type["all"]["errors"] + mm["socket_errors"]),
                             ("minimal Flask app", ref, ref["socket_errors"])):
        lines.append(f"| {label} | {r['requests']} | {errors} | {r['rps']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
                     f"{r['p99_ms']:.0f} | {r['server_cpu_s'] / r['duration_s']:.2f} | "
                     f"{1000 * r['server_cpu_s'] / max(r['requests'], 1):.1f} |")
    lines += ["", f"throughput ratio Matchmaker / minimal: {ratio:.1%}",
              f"cacheable pages (browse, search, listing, match) answered by the page cache: {hits} of {asked}"
              f" ({hits / max(asked, 1):.1%})", "", "Per page type (latency from the client):", "",
              report_table(per_type), "",
              "goals: " + ", ".join(f"{g} {'met' if ok else 'NOT met'}" for g, ok in met.items())]
    return "\n".join(lines), all(met.values())


def _roles(plan_path: Path) -> str:
    roles: dict[str, int] = {}
    for client in json.loads(plan_path.read_text(encoding="utf-8")):
        roles[client["role"]] = roles.get(client["role"], 0) + 1
    return ", ".join(f"{n} {role}" for role, n in roles.items())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prepare = sub.add_parser("prepare")
    prepare.add_argument("plan")
    for name, default in (("firms", 16), ("experts", 14), ("coordinators", 9), ("anonymous", 10)):
        prepare.add_argument(f"--{name}", type=int, default=default)
    prepare.add_argument("--password", default="Matchmaker-demo-2026")
    sign = sub.add_parser("login")
    sign.add_argument("plan")
    sign.add_argument("host")
    sign.add_argument("port", type=int)
    sign.add_argument("password")
    sign.add_argument("out")
    report = sub.add_parser("report")
    report.add_argument("logdir")
    report.add_argument("--json")
    total = sub.add_parser("summary")
    total.add_argument("dir")
    for name in ("duration", "clients", "workers", "scale", "load-before", "load-after", "page-cache", "write-every"):
        total.add_argument(f"--{name}", default="?")
    total.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "prepare":
        from matchmaker import create_app
        with create_app().app_context():
            plan = build_plan(args.firms, args.experts, args.coordinators, args.anonymous, args.password)
        Path(args.plan).write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
        print(f"{len(plan)} clients ({_roles(Path(args.plan))}), {sum(len(c['reads']) for c in plan)} pages, "
              f"{sum(len(c['writes']) for c in plan)} writes in {args.plan}")
    elif args.command == "login":
        plan = json.loads(Path(args.plan).read_text(encoding="utf-8"))
        lines = sign_in_all(plan, args.host, args.port, args.password)
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif args.command == "summary":
        text, ok = summary_text(Path(args.dir), args)
        (Path(args.dir) / "last-run.md").write_text(text + "\n", encoding="utf-8")
        print(text)
        sys.exit(1 if args.check and not ok else 0)
    else:
        summary = summarize(_logs(Path(args.logdir)))
        if args.json:
            Path(args.json).write_text(json.dumps(summary), encoding="utf-8")
        print(report_table(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
