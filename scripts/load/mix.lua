-- wrk script: every connection walks the URL list (URLS_FILE) from its own offset, sends the session
-- cookie (COOKIE) and keeps it current from Set-Cookie answers as a browser does (the app renews the
-- session's last-seen stamp once a minute; one jar per wrk thread), counts every answer that is not 200
-- as an error, and counts the answers the app's page cache served (X-Page-Cache: hit). done() prints one
-- JSON line.
local threads = {}
local paths = {}
for line in io.lines(os.getenv("URLS_FILE")) do
  if #line > 0 then paths[#paths + 1] = line end
end
local cookie = os.getenv("COOKIE") or ""

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
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  position = (id * 7919) % #paths
  bad = 0
  hits = 0
  statuses = {}
  jar = parse_jar(cookie)
  wrk.headers["Cookie"] = cookie_header(jar)
  wrk.headers["Accept-Language"] = "zh-CN"
end

function request()
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end

function response(status, headers, body)
  if headers["X-Page-Cache"] == "hit" then hits = hits + 1 end
  local set = headers["Set-Cookie"]
  if set then
    local name, value = string.match(set, "^%s*([^=;%s]+)=([^;]*)")
    if name and jar[name] ~= nil then  -- only the cookies we hold (the session), as a browser would
      if value == "" then jar[name] = nil else jar[name] = value end
      wrk.headers["Cookie"] = cookie_header(jar)
    end
  end
  if status ~= 200 then
    bad = bad + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad_total, hits_total, codes = 0, 0, {}
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
    hits_total = hits_total + thread:get("hits")
    for code, n in pairs(thread:get("statuses")) do codes[#codes + 1] = string.format('"%d": %d', code, n) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_s": %.2f, "non_200": %d, "non_200_codes": {%s}, "page_cache_hits": %d, ' ..
    '"socket_errors": %d, ' ..
    '"p50_ms": %.1f, "p95_ms": %.1f, "p99_ms": %.1f, "max_ms": %.1f, "mean_ms": %.1f}\n',
    summary.requests, summary.duration / 1e6, bad_total, table.concat(codes, ", "), hits_total,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3))
end
