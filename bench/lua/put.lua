-- PUT-create a new bill with a unique id on every request (`opts.prefix` keeps runs apart).

local seq = 0
local put_headers = {}

function init(args)
  parse_opts(args)
  prefix = opts.prefix .. "-" .. tostring(thread_id or 0) .. "-"
  put_headers["Authorization"] = wrk.headers["Authorization"]
  put_headers["Content-Type"] = "application/json"
  body = '{"amount":{"currency":"RUB","value":"10.00"},"expirationDateTime":"2030-01-01T00:00:00+03:00"}'
end

function request()
  seq = seq + 1
  return wrk.format("PUT", "/partner/bill/v1/bills/" .. prefix .. seq, put_headers, body)
end

function response(status, headers, body)
  count_response()
end
