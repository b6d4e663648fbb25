-- wrk script: every connection walks the URL list (URLS_FILE) from its own offset, sends the session
-- cookie (COOKIE), and counts every answer that is not 200 as an error. done() prints one JSON line.
local threads = {}
local paths = {}
for line in io.lines(os.getenv("URLS_FILE")) do
  if #line > 0 then paths[#paths + 1] = line end
end
local cookie = os.getenv("COOKIE") or ""

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  position = (id * 7919) % #paths
  bad = 0
  statuses = {}
  wrk.headers["Cookie"] = cookie
  wrk.headers["Accept-Language"] = "zh-CN"
end

function request()
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad_total, codes = 0, {}
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
    for code, n in pairs(thread:get("statuses")) do codes[#codes + 1] = string.format('"%d": %d', code, n) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_s": %.2f, "non_200": %d, "non_200_codes": {%s}, "socket_errors": %d, ' ..
    '"p50_ms": %.1f, "p95_ms": %.1f, "p99_ms": %.1f, "max_ms": %.1f, "mean_ms": %.1f}\n',
    summary.requests, summary.duration / 1e6, bad_total, table.concat(codes, ", "),
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3))
end
