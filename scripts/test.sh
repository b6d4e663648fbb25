#!/usr/bin/env bash
# Set up and run the whole test suite: SQLite (everything, browser test included), then the
# database-facing tests again on PostgreSQL when a server answers on 127.0.0.1:5432.
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

python -m pytest "$@"

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
  TEST_DATABASE_URL="$PG_URL" python -m pytest -m "not browser" --ignore=tests/matching "$@"
fi
