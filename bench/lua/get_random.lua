-- GET a uniformly random bill among `opts.prefix .. 0 .. opts.count - 1` (the scale scenario:
-- every request misses any cache that a single hot id would hit).

function init(args)
  parse_opts(args)
  math.randomseed(tonumber(opts.seed or "1"))
  count = tonumber(opts.count)
  prefix = opts.prefix
end

function request()
  local path = "/partner/bill/v1/bills/" .. prefix .. math.random(0, count - 1)
  return wrk.format("GET", path)
end

function response(status, headers, body)
  count_response()
end
