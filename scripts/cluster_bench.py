"""Cluster benchmarks (issue 17): cold start of a web node at ``seed --scale 10`` and propagation delay
p50/p95 over N publishes, on loopback against PostgreSQL and Redis. Run by ``bash scripts/cluster.sh --bench``.

1. A throwaway database next to TEST_DATABASE_URL: ``init-db``, ``seed --scale 10``, ``reindex`` (timed).
2. Cold start: a gunicorn node with an empty index folder, from spawn to /readyz 200 (or, where the code has
   no /readyz, to its first ranking answer), and the texts it embedded on the way (/metrics).
3. Propagation: nodes a, b, c and two workers. N times: a probe capability is published through node A (the
   coordinator's form); from its index job's commit (done_at), rounds of requests ask nodes B and C for the
   probe need's top 10 until both rank it. Two figures: when the successful round was sent ("asked": each node
   applies newer vector rows before it ranks, so this is when the change was visible) and when its answers
   were back ("answered": plus the query's embedding and ranking on a busy machine). Then the capability is
   closed again (service layer) and left to disappear before the next one.

Prints the figures (and the load average: the machine is shared) for docs/benchmarks.md. Every process is
stopped on exit; every wait has a bound.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from matchmaker import create_app  # noqa: E402
from matchmaker.core.enums import Role  # noqa: E402
from matchmaker.extensions import db  # noqa: E402
from matchmaker.indexing import queue  # noqa: E402
from matchmaker.indexing.models import IndexJob  # noqa: E402
from matchmaker.listings import operations as ops  # noqa: E402
from matchmaker.listings.models import Capability  # noqa: E402
from tests import cluster_harness as h  # noqa: E402
from tests.helpers import PASSWORD, Factory, make_token  # noqa: E402

PROBE_NEED = dict(title="量子点荧光防伪油墨规模化制备", industry="new_materials",
                  background="包装印刷企业需要难以仿制的防伪标识。",
                  problems="现有荧光油墨易仿制，量子点油墨批次稳定性差。", targets="批次间荧光峰位偏差≤2nm，耐光≥500小时。")


def probe_capability(i: int) -> dict:
    return dict(title=f"量子点荧光防伪油墨批量合成工艺（方案{i}）", summary="钙钛矿量子点油墨的稳定化与批量合成",
                description=f"方案{i}：荧光峰位批次偏差1.5nm，耐光600小时，可用于包装防伪印刷。",
                field="new_materials")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--publishes", type=int, default=100, help="0: the cold start only")
    parser.add_argument("--model", default=os.environ.get("CLUSTER_MODEL"),
                        help="embedding model (default: the app's default)")
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    parser.add_argument("--database", help="reuse a database a --keep run left (seeded and reindexed)")
    args = parser.parse_args()
    base = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/matchmaker_cluster")
    redis_url = os.environ.get("CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/0")
    if not (h.postgres_answers(base) and h.redis_answers(redis_url)):
        print(f"cluster_bench: PostgreSQL ({base}) and Redis ({redis_url}) must both answer", file=sys.stderr)
        return 2
    url = args.database or h.create_database(base, prefix="mm_cluster_bench")
    cluster = h.Cluster(url, redis_url, Path(tempfile.mkdtemp(prefix="matchmaker-cluster-bench-")), args.model)
    # matching on (changes made here queue index jobs), external (this process never embeds)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "MATCHMAKER_MATCHING": True, "SECRET_KEY": "x" * 40,
                      "MATCHMAKER_INDEX_WORKER": "external"})
    figures: dict[str, str] = {}
    try:
        if not args.database:
            started = time.monotonic()
            cluster.cli("init-db")
            cluster.cli("seed", "--scale", str(args.scale))
            figures["seed"] = f"{time.monotonic() - started:.0f} s"
        with app.app_context(), Session(db.engine) as session:
            from matchmaker.listings.models import Need
            figures["listings"] = (f"{session.scalar(select(func.count()).select_from(Need))} needs, "
                                   f"{session.scalar(select(func.count()).select_from(Capability))} capabilities")
        if not args.database:
            started = time.monotonic()
            cluster.cli("reindex", "--quiet")
            figures["reindex (embeds every listing)"] = f"{time.monotonic() - started:.1f} s"
            if args.keep:
                print(f"database kept: {url}", flush=True)
        with app.app_context():
            ids = prepare(args.publishes)
        probe = lambda node: node.matches(ids["need"], ids["token"], k=10)  # noqa: E731

        cold = cluster.node("cold")
        figures["cold start: ready after"] = f"{h.wait_ready(cold, probe, 1800):.1f} s"
        figures["cold start: readiness signal"] = "/readyz 200" if cold.readyz() == 200 else "first ranking answer"
        embedded = cold.metric("matchmaker_embedded_texts_total") if cold.has_route("/metrics") else None
        figures["cold start: texts embedded"] = "n/a (no /metrics)" if embedded is None else f"{embedded:.0f}"
        cold.stop()

        if not args.publishes:
            return report(args, figures)
        nodes = {name: cluster.node(name) for name in "abc"}
        workers = [cluster.worker(f"w{i}", "--batch", "64") for i in (1, 2)]
        for node in nodes.values():
            h.wait_ready(node, probe, 1800)
        for worker in workers:
            h.wait_for(lambda w=worker: "started" in w.tail(100_000), 1800, step=0.5, what=f"{worker.name} started")
        asked, answered = propagation(app, nodes, ids)
        figures["propagation publishes"] = str(len(asked))
        for label, delays in (("asked", asked), ("answered", answered)):
            q = statistics.quantiles(delays, n=100, method="inclusive")
            figures[f"propagation p50 / p95 / max ({label})"] = (
                f"{statistics.median(delays) * 1000:.0f} / {q[94] * 1000:.0f} / {max(delays) * 1000:.0f} ms")
    finally:
        cluster.stop()
        with app.app_context():
            db.engine.dispose()
        if not (args.keep or args.database):
            h.drop_database(url)
            shutil.rmtree(cluster.workdir, ignore_errors=True)  # the nodes' logs and index folders
    return report(args, figures)


def report(args, figures: dict) -> int:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=h.REPO).stdout.strip()
    print(f"\n== cluster benchmark {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}, "
          f"scale {args.scale}, model {args.model or 'default'}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    for name, value in figures.items():
        print(f"{name}: {value}", flush=True)
    return 0

def prepare(publishes: int) -> dict:
    """The probe need (published, indexed by the workers), the probe capabilities (submitted), a coordinator."""
    make = Factory()
    firm = make.user(Role.ENTERPRISE, org=make.org(name="量子点防伪基准测试企业"))
    expert = make.user(Role.EXPERT, org=make.org(kind="institute", name="量子点防伪基准测试研究所"))
    need = make.need(firm, **PROBE_NEED)
    queue.enqueue(db.session, "need", need.id)
    caps = [make.capability(expert, status="submitted", **probe_capability(i)).id for i in range(publishes)]
    moderator = make.moderator()
    ids = {"need": need.id, "caps": caps, "token": make_token(firm), "moderator": moderator.email,
           "expert": expert.id}
    db.session.commit()
    db.session.remove()
    return ids


def _jobs_after(app, since: int) -> list[IndexJob]:
    with app.app_context(), Session(db.engine) as session:
        rows = list(session.scalars(select(IndexJob).where(IndexJob.id > since)))
        session.expunge_all()
        return rows


def _last_job(app) -> int:
    with app.app_context(), Session(db.engine) as session:
        return session.scalar(select(func.max(IndexJob.id))) or 0


def _done(app, since: int) -> datetime:
    rows = h.wait_for(lambda: (r := _jobs_after(app, since)) and all(j.done_at for j in r) and r, 300,
                      step=0.01, what="index job done")
    done = max(j.done_at for j in rows)
    return done if done.tzinfo else done.replace(tzinfo=timezone.utc)


def _asked_until(app, check, what: str, timeout: float = 120) -> tuple[float, float]:
    """Ask in rounds until ``check()`` holds: (wall time the successful round was sent, when it came back)."""
    deadline = time.monotonic() + timeout
    while True:
        sent = time.time()
        if check():
            return sent, time.time()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.01)


def propagation(app, nodes: dict, ids: dict) -> tuple[list[float], list[float]]:
    """Per publish: (seconds from the job's commit to the sending of the first round of requests that B and C
    both answered with the capability ranked, seconds to that round's answers)."""
    a, others = nodes["a"], [nodes["b"], nodes["c"]]
    coordinator, csrf = h.signed_in(a.base, ids["moderator"], PASSWORD)
    asked, answered = [], []

    def everywhere(cap: int, present: bool) -> bool:
        return all((cap in [i for i, _ in node.matches(ids["need"], ids["token"], k=10)]) == present
                   for node in others)

    for n, cap in enumerate(ids["caps"], 1):
        since = _last_job(app)
        with app.app_context(), Session(db.engine) as session:
            version = session.get(Capability, cap).version
        response = coordinator.post(f"{a.base}/review/capabilities/{cap}/publish",
                                    data={"version": str(version), "csrf_token": csrf}, allow_redirects=False,
                                    timeout=300)
        assert response.status_code == 303, response.text[-300:]
        committed = _done(app, since).timestamp()
        sent, back = _asked_until(app, lambda c=cap: everywhere(c, True), f"publish {n} seen on B and C")
        asked.append(sent - committed)
        answered.append(back - committed)
        since = _last_job(app)
        with app.app_context():
            from matchmaker.accounts.models import User
            ops.close_listing(db.session.get(Capability, cap), db.session.get(User, ids["expert"]))
            db.session.commit()
            db.session.remove()
        _done(app, since)
        _asked_until(app, lambda c=cap: everywhere(c, False), f"close {n} seen on B and C")
        if n % 10 == 0:
            print(f"{n} publishes, p50 so far {statistics.median(asked) * 1000:.0f} ms asked, "
                  f"{statistics.median(answered) * 1000:.0f} ms answered", flush=True)
    return asked, answered

if __name__ == "__main__":
    sys.exit(main())
