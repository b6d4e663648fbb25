-- wrk script of the multi-user mode (scripts/load.sh --multi), run with as many threads as connections, so
-- each thread is one connection and one person: thread i plays client i of CLIENTS_FILE (written by
-- scripts/load/multi.py login): its session cookie (kept current from Set-Cookie answers, as a browser does),
-- its forwarded address (the server trusts one proxy hop, as in production), its pages in turn and, every
-- WRITE_EVERY requests, one of its writes (a POST with its CSRF token; its "once" writes first, one time
-- each, then its "again" writes in turn).
-- Every answer is logged to LOG_DIR/conn-<i>.log as "type<TAB>status<TAB>ms<TAB>cache" (latency from the
-- request's generation to its answer, clock_gettime through LuaJIT's ffi); multi.py report sums them up.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } mm_timespec;
int clock_gettime(int clk_id, mm_timespec *tp);
]]
local ts = ffi.new("mm_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local function split(line)
  local fields = {}
  for field in string.gmatch(line, "([^\t]*)\t?") do fields[#fields + 1] = field end
  if fields[#fields] == "" then fields[#fields] = nil end
  return fields
end

local clients = {}
for line in io.lines(os.getenv("CLIENTS_FILE")) do
  local f = split(line)
  if f[1] == "C" then
    clients[#clients + 1] = {role = f[2], cookie = f[3] ~= "-" and f[3] or "", xff = f[4],
                             csrf = f[5] ~= "-" and f[5] or "", reads = {}, writes = {}}
  elseif f[1] == "R" then
    local c = clients[#clients]
    c.reads[#c.reads + 1] = {kind = f[2], path = f[3]}
  elseif f[1] == "W" then
    local c = clients[#clients]
    c.writes[#c.writes + 1] = {kind = "write:" .. f[2], once = f[3] == "once", path = f[4], body = f[5] or ""}
  end
end
local write_every = tonumber(os.getenv("WRITE_EVERY") or "25")
local counter = 0

local function parse_jar(header)
  local jar = {}
  for name, value in string.gmatch(header, "([^=;%s]+)=([^;]*)") do jar[name] = value end
  return jar
end

local function cookie_header(jar)
  local parts = {}
  for name, value in pairs(jar) do parts[#parts + 1] = name .. "=" .. value end
  table.sort(parts)
  return table.concat(parts, "; ")
end

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  me = clients[id % #clients + 1]
  position = (id * 7) % #me.reads
  sent = 0
  again_at = 0
  me.once, me.again = {}, {}
  for _, w in ipairs(me.writes) do
    if w.once then me.once[#me.once + 1] = w else me.again[#me.again + 1] = w end
  end
  jar = parse_jar(me.cookie)
  log = io.open(os.getenv("LOG_DIR") .. "/conn-" .. id .. ".log", "w")
  log:setvbuf("line")
  -- wrk.format uses the headers it is given instead of wrk.headers, so every request carries all of these
  base_headers = {["Accept-Language"] = "zh-CN", ["X-Forwarded-For"] = me.xff, ["X-Forwarded-Proto"] = "https",
                  ["Host"] = wrk.headers["Host"]}
end

local function pick_write()  -- the "once" writes first, in order, then the "again" ones in turn
  if #me.once > 0 then return table.remove(me.once, 1) end
  if #me.again == 0 then return nil end
  again_at = again_at % #me.again + 1
  return me.again[again_at]
end

function request()
  sent = sent + 1
  local headers = {}
  for name, value in pairs(base_headers) do headers[name] = value end
  local cookie = cookie_header(jar)
  if cookie ~= "" then headers["Cookie"] = cookie end
  local w = nil
  if me.csrf ~= "" and #me.writes > 0 and sent % write_every == 0 then w = pick_write() end
  started = now_ms()
  if w then
    current = w.kind
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["Referer"] = "https://" .. (base_headers["Host"] or "localhost") .. "/"  -- Flask-WTF's https check
    local body = w.body .. (#w.body > 0 and "&" or "") .. "csrf_token=" .. me.csrf
    return wrk.format("POST", w.path, headers, body)
  end
  position = position % #me.reads + 1
  current = me.reads[position].kind
  return wrk.format("GET", me.reads[position].path, headers)
end

function response(status, headers, body)
  local elapsed = now_ms() - started
  local set = headers["Set-Cookie"]
  if set then
    local name, value = string.match(set, "^%s*([^=;%s]+)=([^;]*)")
    if name and jar[name] ~= nil then  -- only the cookies we hold (the session), as a browser would
      if value == "" then jar[name] = nil else jar[name] = value end
    end
  end
  log:write(string.format("%s\t%d\t%.2f\t%s\n", current, status, elapsed, headers["X-Page-Cache"] or "-"))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_s": %.2f, "socket_errors": %d, "p50_ms": %.1f, "p95_ms": %.1f, ' ..
    '"p99_ms": %.1f, "max_ms": %.1f, "mean_ms": %.1f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3))
end
