"""Cold start of a ranking process from the vectors stored in the database (docs/benchmarks.md, "Process start").

    .venv/bin/python scripts/cold_start.py [--scale N] [--model SPEC] [--keep DIR]

Makes a SQLite database in a temporary folder (init-db, seed --scale N, reindex: the stored vectors), then
starts fresh processes that build their engine as a web worker does at start (``matching_service.get_engine``)
and prints, for each: seconds to ready (model load included, then the indexes), texts embedded (0 is the point)
and peak RSS. Runs: an empty index folder (build from rows), the snapshot that run saved, and the model load
alone for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = r"""
import json, resource, sys, time
began = time.monotonic()
from matchmaker import create_app
from matchmaker import matching_service as ms
from matchmaker.core.metrics import EMBEDDED_TEXTS
app = create_app()
with app.app_context():
    if sys.argv[1] == "model-only":
        from matchmaker.matching.embedders import load_embedder
        load_embedder(ms.configured_spec())
        docs = 0
    else:
        engine = ms.get_engine()
        docs = sum(v["count"] for v in engine.status().values())
print(json.dumps({"seconds": round(time.monotonic() - began, 2), "embedded": EMBEDDED_TEXTS._value.get(),
                  "docs": docs, "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--model", default=None, help="MATCHMAKER_EMBEDDING_MODEL (default: the platform's)")
    parser.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temp dir)")
    args = parser.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="mm-cold-"))
    base.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{base / 'db.sqlite'}", MATCHMAKER_INDEX_DIR=str(base / "index"),
               MATCHMAKER_MATCHING="1", MATCHMAKER_INDEX_WORKER="external", PYTHONUNBUFFERED="1")
    if args.model:
        env["MATCHMAKER_EMBEDDING_MODEL"] = args.model
    cli = [sys.executable, "-c", "from matchmaker.cli import main; main()"]

    def run(*argv):
        began = time.monotonic()
        subprocess.run([*cli, *argv], env=env, check=True, stdout=subprocess.DEVNULL)
        return time.monotonic() - began

    if not (base / "db.sqlite").exists():
        run("init-db")
        run("seed", "--scale", str(args.scale))
        print(f"reindex (embeds every listing into stored vectors): {run('reindex', '--quiet'):.1f} s")

    def probe(label: str, mode: str, index_dir: Path) -> None:
        out = subprocess.run([sys.executable, "-c", PROBE, mode], env={**env, "MATCHMAKER_INDEX_DIR": str(index_dir)},
                             check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        print(f"{label:<44} {json.loads(out)}")

    empty = base / f"index-empty-{int(time.time())}"
    probe("model load only", "model-only", empty)
    probe("empty index folder (build from rows)", "engine", empty)
    probe("from the snapshot the previous run saved", "engine", empty)
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
