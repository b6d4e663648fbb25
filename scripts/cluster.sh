#!/usr/bin/env bash
# Several machines on loopback (issue 17): three gunicorn web nodes with their own index folders and two
# `matchmaker worker` processes against one PostgreSQL database and Redis, checked by
# tests/indexing/test_cluster.py (propagation within 2 s, identical rankings, a fresh node ready with nothing
# embedded, kill -9 of a worker mid-batch taken over within 30 s, no job claimed by two live workers) and the
# takeover tests (tests/indexing/test_takeover.py).
#
#   bash scripts/cluster.sh            # the checks (small data, a few minutes)
#   bash scripts/cluster.sh --bench    # the benchmarks instead: cold start of a node at seed --scale 10 and
#                                      # propagation p50/p95 over 100 publishes (scripts/cluster_bench.py)
#
# Environment: TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/matchmaker_cluster; a
# throwaway database is made next to it and dropped after), CLUSTER_REDIS_URL (default
# redis://127.0.0.1:6379/0), CLUSTER_MODEL (embedding model of the checks, default "use"; the benchmark uses
# the app's default unless set), CLUSTER_PYTHON (default .venv/bin/python). Every process is stopped on exit
# (each in its own process group, with a parent-death signal); every wait has a bound.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${CLUSTER_PYTHON:-.venv/bin/python}  # e.g. another checkout's venv
[ -x "$PY" ] || { echo "cluster.sh: $PY missing; run bash scripts/setup-venv.sh \"[test]\" first" >&2; exit 2; }
export TEST_DATABASE_URL="${TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/matchmaker_cluster}"
export CLUSTER_REDIS_URL="${CLUSTER_REDIS_URL:-redis://127.0.0.1:6379/0}"

if [ "${1:-}" = "--bench" ]; then
  shift
  exec "$PY" scripts/cluster_bench.py "$@"
fi
# -n 0: the module's processes already use both cores; -rxXs: say what was skipped or expected to fail, and why
exec "$PY" -m pytest -n 0 -rxXs tests/indexing/test_cluster.py tests/indexing/test_takeover.py "$@"
