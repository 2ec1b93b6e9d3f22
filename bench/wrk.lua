-- wrk script for bench/run.sh. Configured by the environment:
--   BENCH_METHOD  GET (default) or POST
--   BENCH_TOKEN   sent as the PRIVATE-TOKEN header when set
--   BENCH_BEARER  sent as "Authorization: Bearer ..." when set (instead of BENCH_TOKEN)
--   BENCH_BODY    request body (sent as application/x-www-form-urlencoded) when set
--   BENCH_POOL_FILE  single-use credentials, one per line: each request sends
--                 one as the form field BENCH_POOL_FIELD (BENCH_BODY is the rest
--                 of the form: grant_type, client_id, ...). With BENCH_POOL_CHAIN
--                 (a field of the JSON answer, e.g. refresh_token) the answer's
--                 value goes back into the pool, so a pool of one per connection
--                 lasts (refresh tokens); without it the pool must hold a
--                 credential per request (authorization codes, device codes)
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

local pool_file = os.getenv("BENCH_POOL_FILE")
if pool_file and pool_file ~= "" then
  local pool = {}
  for line in io.lines(pool_file) do
    if line ~= "" then pool[#pool + 1] = line end
  end
  local field = os.getenv("BENCH_POOL_FIELD") or "refresh_token"
  local chain = os.getenv("BENCH_POOL_CHAIN") or ""
  local pattern = '"' .. chain .. '":"([^"]+)"'
  local rest = body or ""
  request = function()
    local t = table.remove(pool)
    if not t then t = "pool-empty" end  -- answered 400: counted as an error
    return wrk.format("POST", nil, nil, field .. "=" .. t .. "&" .. rest)
  end
  if chain ~= "" then
    response = function(status, headers, resp)
      local t = resp and string.match(resp, pattern)
      if t then pool[#pool + 1] = t end
    end
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
