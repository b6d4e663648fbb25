#!/usr/bin/env bash
# Bounded web load test: Matchmaker under gunicorn on loopback with 10x demo data, then the same load on a
# minimal Flask app under the same gunicorn settings, and the throughput ratio of the two.
#
#   bash scripts/load.sh                      # one signed-in firm, 50 clients, 60 s per app (single-session)
#   bash scripts/load.sh --duration 10 --clients 10    # a short development run
#   bash scripts/load.sh --multi              # many different people on PostgreSQL, gunicorn -w 4
#   bash scripts/load.sh --multi --quick      # the same, 10 clients for 10 s (a smoke test)
#
# Options: --duration S  --clients N  --workers N (gunicorn, default 2; 4 with --multi)  --scale N (data size,
#          default 10)  --match-needs K (needs whose match pages are in the mix, default 6)  --warmup S (mixed
#          warm-up)  --dir PATH (throwaway database + index, default /tmp/matchmaker-load)
#          --fresh (rebuild the data even if the stamp matches)  --check (exit 1 when a goal is missed)
#          --no-page-cache (every page rendered afresh: MATCHMAKER_PAGE_CACHE=0, for comparison)
#          --multi (multi-user mode, below)  --quick (--duration 10 --clients 10)
#          --write-every N (multi: each signed-in client sends one write every N requests, default 25)
# Environment: LOAD_MODEL (embedding model, default the app's), LOAD_USER (login, default the demo firm),
#          LOAD_VENV (virtualenv, default .venv), LOAD_PG (multi: PostgreSQL server URL, default
#          postgresql://postgres@127.0.0.1:5432; databases mm_load_base, kept, and mm_load_run, copied from it
#          for every run so each run starts from the same data).
#
# Single-session mode: one signed-in firm on SQLite, its 50 connections cycling browse, listing and match
# pages. Multi-user mode: 80 % of the clients are different signed-in people (firms reading the match pages
# of their own needs, experts their suggestions, coordinators match pages across the site, the review queue,
# the coordination workspace and dashboards, the administrator the admin pages), 20 % anonymous visitors;
# every client also browses, searches and reads listings, and the signed-in firms and experts write (need
# drafts, pairing answers, fair meeting requests). One wrk thread per connection, each playing one person
# (scripts/load/multi.py, multi.lua); per page type p50/p95 and page-cache hits, server CPU per request.
#
# The server runs with MATCHMAKER_ENV=production and a throwaway SECRET_KEY, so cookies are Secure and the
# session cookie is __Host-session; the client (scripts/load/login.py) reads the cookie from the raw header
# and wrk sends it back over plain http, so no setting is relaxed (multi-user mode: the server trusts one proxy
# hop, the production default, and each client comes from its own forwarded address). Figures go to stdout and
# $DIR/last-run.md; docs/benchmarks.md ("Web load") records them. Every wait has a bound; servers are stopped
# on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=60; CLIENTS=50; WORKERS=""; SCALE=10; WARMUP=10; MATCH_NEEDS=6; DIR=/tmp/matchmaker-load; FRESH=0; CHECK=0; PAGE_CACHE=1
MULTI=0; WRITE_EVERY=25
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
    --multi) MULTI=1; shift ;;
    --quick) DURATION=10; CLIENTS=10; shift ;;
    --write-every) WRITE_EVERY=$2; shift 2 ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "load.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$WORKERS" ]; then WORKERS=$(( MULTI ? 4 : 2 )); fi
THREADS=$(( CLIENTS < 2 ? 1 : 2 ))  # wrk threads: one per core at most, fewer than connections
VENV=${LOAD_VENV:-.venv}

if [ ! -x "$VENV/bin/gunicorn" ]; then
  echo "load.sh: $VENV with gunicorn missing; run bash scripts/setup-venv.sh first" >&2; exit 2
fi
. "$VENV/bin/activate"
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
  else
    echo "load.sh: wrk is missing (apt-get install wrk)" >&2; exit 2
  fi
fi

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

run_multi() {  # the multi-user mode: PostgreSQL, many accounts, writes; per page type figures
  local pg=${LOAD_PG:-postgresql://postgres@127.0.0.1:5432} password=${MATCHMAKER_DEMO_PASSWORD:-Matchmaker-demo-2026}
  local stamp secret before after client logs=$DIR/multi-logs
  mkdir -p "$DIR"
  export MATCHMAKER_INDEX_DIR="$DIR/pg-index-run" MATCHMAKER_MAIL_OUTBOX_DIR="$DIR/outbox"  # mail of the writes
  if [ -n "${LOAD_MODEL:-}" ]; then export MATCHMAKER_EMBEDDING_MODEL=$LOAD_MODEL; fi
  pg_sql() { python -c 'import sys, psycopg; c = psycopg.connect(sys.argv[1], autocommit=True); [c.execute(q) for q in sys.argv[2:]]' "$pg/postgres" "$@"; }
  stamp=$(cat seeds/* matchmaker/seeding.py scripts/load/multi.py | sha256sum | cut -c1-16)-x$SCALE-${LOAD_MODEL:-default}-pg
  if [ $FRESH = 1 ] || [ "$(cat "$DIR/pg-stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "== building $SCALE x demo data in PostgreSQL mm_load_base (+ index in $DIR/pg-index)"
    rm -rf "$DIR/pg-index" "$DIR/pg-stamp"
    pg_sql "DROP DATABASE IF EXISTS mm_load_run" "DROP DATABASE IF EXISTS mm_load_base" "CREATE DATABASE mm_load_base"
    DATABASE_URL="$pg/mm_load_base" MATCHMAKER_INDEX_DIR="$DIR/pg-index" matchmaker init-db >/dev/null
    DATABASE_URL="$pg/mm_load_base" MATCHMAKER_INDEX_DIR="$DIR/pg-index" matchmaker seed --scale "$SCALE"
    DATABASE_URL="$pg/mm_load_base" MATCHMAKER_INDEX_DIR="$DIR/pg-index" matchmaker reindex --quiet
    echo "$stamp" > "$DIR/pg-stamp"
  fi
  # every run starts from the same data: a copy of the base database and its index
  pg_sql "DROP DATABASE IF EXISTS mm_load_run" "CREATE DATABASE mm_load_run TEMPLATE mm_load_base"
  rm -rf "$DIR/pg-index-run"; cp -r "$DIR/pg-index" "$DIR/pg-index-run"
  export DATABASE_URL="$pg/mm_load_run"
  matchmaker init-db >/dev/null  # the kept base follows new migrations
  local anon=$(( CLIENTS / 5 )) signed firms experts coords
  signed=$(( CLIENTS - anon ))
  firms=$(( signed * 2 / 5 )); experts=$(( signed * 7 / 20 )); coords=$(( signed - firms - experts - 1 ))
  if [ $coords -lt 1 ]; then coords=1; experts=$(( signed - firms - coords - 1 )); fi
  python scripts/load/multi.py prepare "$DIR/plan.json" --firms $firms --experts $experts \
    --coordinators $coords --anonymous $anon --password "$password"

  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== Matchmaker (multi-user): gunicorn -w $WORKERS, $CLIENTS clients for ${DURATION}s (load average $LOAD_BEFORE)"
  secret=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')
  MATCHMAKER_PAGE_CACHE=$PAGE_CACHE MATCHMAKER_ENV=production SECRET_KEY=$secret MATCHMAKER_PROXY_HOPS=1 \
    MATCHMAKER_INDEX_WORKER=external start_server wsgi:app "$ROOT"
  python scripts/load/multi.py login "$DIR/plan.json" 127.0.0.1 "$PORT" "$password" "$DIR/clients.txt"
  # Warm-up, not measured: each worker loads the embedding model (one match page of a need outside the
  # mix, WORKERS*2 at once so every sync worker gets one); no page of the mix is visited before the run.
  local warm_cookie warm_url
  warm_cookie=$(awk -F'\t' '$1 == "C" && $2 == "coordinator" {print $3; exit}' "$DIR/clients.txt")
  warm_url=$(python -c 'import json, sys; p = json.load(open(sys.argv[1])); seen = {u for c in p for _, u in c["reads"]}
import re; ids = sorted({int(m) for c in p for _, u in c["reads"] for m in re.findall(r"^/needs/(\d+)$", u)})
print(next((f"/needs/{i}/matches" for i in ids if f"/needs/{i}/matches" not in seen), "/needs"))' "$DIR/plan.json")
  for _ in $(seq 1 $(( WORKERS * 2 ))); do echo "$warm_url"; done |
    xargs -P $(( WORKERS * 2 )) -I{} curl -s -o /dev/null --max-time 600 -H "Cookie: $warm_cookie" \
      -H "X-Forwarded-For: 10.77.250.1" -H "X-Forwarded-Proto: https" "http://127.0.0.1:$PORT{}"
  rm -rf "$logs"; mkdir -p "$logs/matchmaker" "$logs/minimal"
  before=$(server_cpu_ticks)
  TIMEFORMAT='%U %S'
  { time CLIENTS_FILE="$DIR/clients.txt" LOG_DIR="$logs/matchmaker" WRITE_EVERY=$WRITE_EVERY \
      wrk -t"$CLIENTS" -c"$CLIENTS" -d"${DURATION}s" --timeout 10s -s scripts/load/multi.lua \
      "http://127.0.0.1:$PORT" >"$DIR/multi-matchmaker.wrk"; } 2>"$DIR/multi-matchmaker.time"
  after=$(server_cpu_ticks)
  echo "$(( after - before )) $(getconf CLK_TCK) $(awk '{print $1 + $2}' "$DIR/multi-matchmaker.time")" >"$DIR/multi-matchmaker.cpu"
  stop_server

  echo "== minimal Flask app: same gunicorn settings and load"
  start_server minimal_app:app "$ROOT/scripts/load"
  before=$(server_cpu_ticks)
  { time CLIENTS_FILE="$DIR/clients.txt" LOG_DIR="$logs/minimal" WRITE_EVERY=$WRITE_EVERY \
      wrk -t"$CLIENTS" -c"$CLIENTS" -d"${DURATION}s" --timeout 10s -s scripts/load/multi.lua \
      "http://127.0.0.1:$PORT" >"$DIR/multi-minimal.wrk"; } 2>"$DIR/multi-minimal.time"
  after=$(server_cpu_ticks)
  echo "$(( after - before )) $(getconf CLK_TCK) $(awk '{print $1 + $2}' "$DIR/multi-minimal.time")" >"$DIR/multi-minimal.cpu"
  stop_server
  LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
  python scripts/load/multi.py summary "$DIR" --duration "$DURATION" --clients "$CLIENTS" --workers "$WORKERS" \
    --scale "$SCALE" --load-before "$LOAD_BEFORE" --load-after "$LOAD_AFTER" --page-cache "$PAGE_CACHE" \
    --write-every "$WRITE_EVERY" $( [ $CHECK = 1 ] && echo --check )
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

if [ $MULTI = 1 ]; then run_multi; exit $?; fi

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
