#!/usr/bin/env bash
# Set up and run the whole test suite: ruff, then SQLite (everything, browser tests included) on two
# pytest-xdist workers, then the tests that touch the database again on PostgreSQL when a server answers on
# 127.0.0.1:5432 (each worker on its own database, <name>_gw0, <name>_gw1 …; see tests/conftest.py).
# PYTEST_WORKERS=0 runs in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh "[test]"
. .venv/bin/activate

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian chromium + chromium-driver for the browser tests…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "WARNING: chromium/chromedriver absent and cannot be installed here; browser tests will be SKIPPED." >&2
  fi
fi

echo "=== ruff ==="
ruff check matchmaker tests scripts

# worksteal: a few tests take minutes (real models), so idle workers take over queued tests
WORKERS=(-n "${PYTEST_WORKERS:-2}")
[ "${PYTEST_WORKERS:-2}" = 0 ] || WORKERS+=(--dist worksteal)

echo "=== SQLite ==="
python -m pytest "${WORKERS[@]}" "$@"

PG_URL="${TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/matchmaker_test}"
if python - "$PG_URL" <<'PY'
import sys
import psycopg
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
base = url.rsplit("/", 1)[0] + "/postgres"
try:
    with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
        name = url.rsplit("/", 1)[1]
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
except Exception as exc:
    print(f"PostgreSQL not reachable ({exc}); skipping the PostgreSQL run.", file=sys.stderr)
    sys.exit(1)
PY
then
  echo "=== Database tests again on PostgreSQL ==="
  # nodb: the engine, the scheduler, catalogue checks … run no SQL (tests/conftest.py fails them if they do)
  # cluster: one set of web nodes and workers for the module, so it runs on its own below (one process)
  TEST_DATABASE_URL="$PG_URL" python -m pytest "${WORKERS[@]}" -m "not browser and not nodb and not cluster" "$@"
  CLUSTER_REDIS_URL="${CLUSTER_REDIS_URL:-redis://127.0.0.1:6379/0}"
  if python -c "import redis, sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping()" \
      "$CLUSTER_REDIS_URL" 2>/dev/null; then
    echo "=== Cluster on PostgreSQL + Redis (web nodes and workers on loopback) ==="
    # exit code 5 = nothing selected (the arguments named other tests): not a failure
    CLUSTER_REDIS_URL="$CLUSTER_REDIS_URL" TEST_DATABASE_URL="$PG_URL" python -m pytest -n 0 -rxXs -m cluster "$@" \
      || { rc=$?; [ "$rc" = 5 ] || exit "$rc"; }
  else
    echo "WARNING: Redis does not answer at $CLUSTER_REDIS_URL; the cluster tests (tests/indexing/test_cluster.py) were SKIPPED." >&2
  fi
fi
