-- Shared by every bench scenario (the harness prepends this file to the scenario's script).
-- Options come as `-- key=value` arguments; `max_requests` bounds the run per thread, and
-- done() prints one machine-readable line that the harness parses (the text report stays too).

opts = {}
local responses = 0
local max_requests = 0

-- setup() runs in wrk's main Lua state once per thread: give every thread its own id, so that
-- generated bill ids never collide between threads.
local thread_counter = 0
function setup(thread)
  thread:set("thread_id", thread_counter)
  thread_counter = thread_counter + 1
end

function parse_opts(args)
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if k then opts[k] = v end
  end
  max_requests = tonumber(opts.max_requests or "0") or 0
  wrk.headers["Authorization"] = "Bearer " .. (opts.key or "")
end

-- Called by each scenario's response(): stops this thread once its request budget is spent.
function count_response()
  responses = responses + 1
  if max_requests > 0 and responses >= max_requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"mean_us":%.1f,"max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
