-- wrk script for bench/run.sh. Configured by the environment:
--   BENCH_METHOD  GET (default) or POST
--   BENCH_TOKEN   sent as the PRIVATE-TOKEN header when set
--   BENCH_BEARER  sent as "Authorization: Bearer ..." when set (instead of BENCH_TOKEN)
--   BENCH_BODY    request body (sent as application/x-www-form-urlencoded) when set
--   BENCH_REFRESH_FILE  refresh tokens, one per line (at least one per connection):
--                 each request refreshes one (BENCH_BODY is the rest of the form:
--                 client_id and client_secret) and the new refresh token from the
--                 answer goes back into the pool, so every request uses a live one
-- done() prints one line "BENCH_JSON {...}" with the raw figures,
-- latencies in microseconds, including p99.9 (wrk --latency prints only
-- 50/75/90/99).
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN")
local bearer = os.getenv("BENCH_BEARER")
if bearer and bearer ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bearer
elseif token and token ~= "" then
  wrk.headers["PRIVATE-TOKEN"] = token
end
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

local refresh_file = os.getenv("BENCH_REFRESH_FILE")
if refresh_file and refresh_file ~= "" then
  local pool = {}
  for line in io.lines(refresh_file) do
    if line ~= "" then pool[#pool + 1] = line end
  end
  local rest = body or ""
  request = function()
    local t = table.remove(pool)
    if not t then t = "pool-empty" end  -- answered 400: counted as an error
    return wrk.format("POST", nil, nil,
      "grant_type=refresh_token&refresh_token=" .. t .. "&" .. rest)
  end
  response = function(status, headers, resp)
    local t = resp and string.match(resp, '"refresh_token":"([^"]+)"')
    if t then pool[#pool + 1] = t end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
