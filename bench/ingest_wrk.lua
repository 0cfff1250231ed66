-- wrk script for bench/ingest.py: POST /api/v1/messages with a unique Idempotency-Key per
-- request; prints one JSON line with the figures the benchmark reads.
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  prefix = args[1]
  token = args[2]
  counter = 0
end

function request()
  counter = counter + 1
  local key = prefix .. "-" .. tid .. "-" .. counter
  local body = '{"sender":"bench' .. (counter % 500) .. '@example.com",'
    .. '"text":"message ' .. key .. ' about my order","subject":"Order"}'
  local headers = {["Content-Type"] = "application/json", ["Idempotency-Key"] = key}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", "/api/v1/messages", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout, e.status))
end
