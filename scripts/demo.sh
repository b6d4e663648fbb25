#!/usr/bin/env bash
# One command from a fresh clone to a running, seeded platform on http://127.0.0.1:5000
# (SQLite in instance/, bundled offline embedding model, FAISS index in embeddings/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
. .venv/bin/activate
matchmaker init-db
matchmaker seed
matchmaker reindex
HOST="${HOST:-127.0.0.1}"; PORT="${PORT:-5000}"
cat <<MSG

  Matchmaker is starting on http://${HOST}:${PORT}

  Demo logins (password: ${MATCHMAKER_DEMO_PASSWORD:-Matchmaker-demo-2026})
    admin ............ admin@demo.matchmaker.local
    coordinator ...... coordinator@demo.matchmaker.local   (all hub cities)
    coordinator (CQ) . coordinator.cq@demo.matchmaker.local (Chongqing only)
    enterprise ....... firm@demo.matchmaker.local
    expert ........... expert@demo.matchmaker.local

MSG
exec matchmaker run --host "$HOST" --port "$PORT"
