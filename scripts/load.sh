#!/usr/bin/env bash
# Bounded web load test: Matchmaker under gunicorn on loopback with 10x demo data, then the same load on a
# minimal Flask app under the same gunicorn settings, and the throughput ratio of the two.
#
#   bash scripts/load.sh                      # 50 clients, 60 s per app (the recorded benchmark)
#   bash scripts/load.sh --duration 10 --clients 10    # a short development run
#
# Options: --duration S  --clients N  --workers N (gunicorn, default 2)  --scale N (data size, default 10)
#          --match-needs K (needs whose match pages are in the mix, default 6)  --warmup S (mixed warm-up)
#          --dir PATH (throwaway SQLite database + index, default /tmp/matchmaker-load)
#          --fresh (rebuild the data even if the stamp matches)  --check (exit 1 when a goal is missed)
#          --no-page-cache (every page rendered afresh: MATCHMAKER_PAGE_CACHE=0, for comparison)
# Environment: LOAD_MODEL (embedding model, default the app's), LOAD_USER (login, default the demo firm).
#
# The server runs with MATCHMAKER_ENV=production and a throwaway SECRET_KEY, so cookies are Secure and the
# session cookie is __Host-session; the client (scripts/load/login.py) reads the cookie from the raw header
# and wrk sends it back over plain http, so no setting is relaxed. Figures go to stdout and $DIR/last-run.md;
# docs/benchmarks.md ("Web load") records them. Every wait has a bound; servers are stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=60; CLIENTS=50; WORKERS=2; SCALE=10; WARMUP=10; MATCH_NEEDS=6; DIR=/tmp/matchmaker-load; FRESH=0; CHECK=0; PAGE_CACHE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --match-needs) MATCH_NEEDS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    --check) CHECK=1; shift ;;
    --no-page-cache) PAGE_CACHE=0; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "load.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
THREADS=$(( CLIENTS < 2 ? 1 : 2 ))  # wrk threads: one per core at most, fewer than connections

if [ ! -x .venv/bin/gunicorn ]; then
  echo "load.sh: .venv with gunicorn missing; run bash scripts/setup-venv.sh first" >&2; exit 2
fi
. .venv/bin/activate
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
  else
    echo "load.sh: wrk is missing (apt-get install wrk)" >&2; exit 2
  fi
fi

# --- throwaway data: SQLite database + index, rebuilt when the seeds, the seeder or the scale change ---
mkdir -p "$DIR"
export DATABASE_URL="sqlite:///$DIR/load.sqlite" MATCHMAKER_INDEX_DIR="$DIR/index"
if [ -n "${LOAD_MODEL:-}" ]; then export MATCHMAKER_EMBEDDING_MODEL=$LOAD_MODEL; fi
STAMP=$(cat seeds/* matchmaker/seeding.py | sha256sum | cut -c1-16)-x$SCALE-${LOAD_MODEL:-default}
if [ $FRESH = 1 ] || [ "$(cat "$DIR/stamp" 2>/dev/null)" != "$STAMP" ]; then
  echo "== building $SCALE x demo data in $DIR"
  rm -rf "$DIR/load.sqlite" "$DIR/index" "$DIR/stamp"
  matchmaker init-db >/dev/null
  matchmaker seed --scale "$SCALE"
  matchmaker reindex --quiet
  echo "$STAMP" > "$DIR/stamp"
fi
matchmaker init-db >/dev/null  # a kept database follows new migrations
python scripts/load/urls.py "$DIR/urls.txt" "$MATCH_NEEDS"

# --- servers ---------------------------------------------------------------------------------------------
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT INT TERM

free_port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_server() {  # $1 = WSGI app, $2 = directory to run in; the same gunicorn settings for both apps
  PORT=$(free_port)
  (cd "$2" && exec gunicorn "$1" --bind "127.0.0.1:$PORT" --workers "$WORKERS" --worker-class sync \
      --timeout 900 --graceful-timeout 5 --log-level warning) >>"$DIR/gunicorn.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 120); do
    if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "load.sh: gunicorn died, see $DIR/gunicorn.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "load.sh: server did not answer within 60 s" >&2; exit 1
}

server_cpu_ticks() {  # user+system ticks of the gunicorn master and its workers
  local total=0 pid
  for pid in $SERVER_PID $(pgrep -P "$SERVER_PID" || true); do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
  done
  echo $total
}

measure() {  # $1 = label; runs wrk for DURATION and writes $DIR/$1.json
  local before after client
  before=$(server_cpu_ticks)
  TIMEFORMAT='%U %S'
  { time URLS_FILE="$DIR/urls.txt" COOKIE="$COOKIE" wrk -t"$THREADS" -c"$CLIENTS" -d"${DURATION}s" \
      --timeout 10s -s scripts/load/mix.lua "http://127.0.0.1:$PORT" >"$DIR/$1.wrk"; } 2>"$DIR/$1.time"
  after=$(server_cpu_ticks)
  client=$(awk '{print $1 + $2}' "$DIR/$1.time")
  python - "$DIR/$1" "$client" "$(( after - before ))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
prefix, client_s, server_ticks, hz = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
result = json.loads([l for l in open(prefix + ".wrk") if l.startswith("{")][-1])
result["client_cpu_s"], result["server_cpu_s"] = client_s, server_ticks / hz
json.dump(result, open(prefix + ".json", "w"))
PY
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== Matchmaker: gunicorn -w $WORKERS, $CLIENTS clients for ${DURATION}s (load average $LOAD_BEFORE)"
MATCHMAKER_PAGE_CACHE=$PAGE_CACHE MATCHMAKER_ENV=production SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(48))') \
  MATCHMAKER_PROXY_HOPS=0 start_server wsgi:app "$ROOT"
COOKIE=$(python scripts/load/login.py 127.0.0.1 "$PORT" "${LOAD_USER:-firm@demo.matchmaker.local}" \
  "${MATCHMAKER_DEMO_PASSWORD:-Matchmaker-demo-2026}")
# Warm-up, not measured: each worker loads the embedding model and ranks each match page once (a cold
# match page encodes every evidence sentence: seconds of CPU). WORKERS parallel requests per URL keep every
# sync worker busy with one of them, so each worker sees each URL; then a short mixed run. The long
# gunicorn --timeout lets a cold ranking finish on a busy machine instead of killing the worker.
for url in $(cat "$DIR/urls.txt.match"); do for _ in $(seq 1 "$WORKERS"); do echo "$url"; done; done |
  xargs -P "$WORKERS" -I{} curl -s -o /dev/null --max-time 600 -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT{}"
URLS_FILE="$DIR/urls.txt" COOKIE="$COOKIE" wrk -t"$THREADS" -c$(( WORKERS * 2 )) -d"${WARMUP}s" --timeout 60s \
  -s scripts/load/mix.lua "http://127.0.0.1:$PORT" >"$DIR/warmup.wrk"
measure matchmaker
stop_server

echo "== minimal Flask app: same gunicorn settings and load"
start_server minimal_app:app "$ROOT/scripts/load"
URLS_FILE="$DIR/urls.txt" COOKIE="" wrk -t1 -c2 -d2s -s scripts/load/mix.lua "http://127.0.0.1:$PORT" >/dev/null
measure minimal
stop_server
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

python - "$DIR" "$DURATION" "$CLIENTS" "$WORKERS" "$SCALE" "$LOAD_BEFORE" "$LOAD_AFTER" "$CHECK" "$PAGE_CACHE" <<'PY'
import json, sys
d, duration, clients, workers, scale, load_before, load_after, check, page_cache = sys.argv[1:]
mm, ref = (json.load(open(f"{d}/{name}.json")) for name in ("matchmaker", "minimal"))
rows = []
for name, r in (("Matchmaker (browse, listing, match)", mm), ("minimal Flask app", ref)):
    r["errors"] = r["non_200"] + r["socket_errors"]
    r["rps"] = r["requests"] / r["duration_s"]
    rows.append(f"| {name} | {r['requests']} | {r['errors']} | {r['rps']:.1f} | {r['p50_ms']:.0f} | "
                f"{r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['client_cpu_s'] / r['duration_s']:.2f} | "
                f"{r['server_cpu_s'] / r['duration_s']:.2f} |")
ratio = mm["rps"] / ref["rps"]
goals = {"0 errors": mm["errors"] == 0, "p95 <= 150 ms": mm["p95_ms"] <= 150, "ratio >= 40 %": ratio >= 0.40}
text = "\n".join([
    f"{clients} clients, {duration} s per app, gunicorn -w {workers} sync, {scale}x demo data (SQLite), "
    f"page cache {'on' if page_cache == '1' else 'off'}, load average before {load_before}, after {load_after}",
    "",
    "| app | requests | errors | req/s | p50 ms | p95 ms | p99 ms | client CPU (cores) | server CPU (cores) |",
    "|---|---|---|---|---|---|---|---|---|",
    *rows,
    "",
    f"throughput ratio Matchmaker / minimal: {ratio:.1%}",
    f"Matchmaker answers served by the page cache: {mm['page_cache_hits']} of {mm['requests']} "
    f"({mm['page_cache_hits'] / max(mm['requests'], 1):.1%})",
    "goals: " + ", ".join(f"{g} {'met' if ok else 'NOT met'}" for g, ok in goals.items()),
    f"non-200 answers by status: {mm['non_200_codes'] or 'none'}",
])
open(f"{d}/last-run.md", "w").write(text + "\n")
print(text)
sys.exit(1 if check == "1" and not all(goals.values()) else 0)
PY
