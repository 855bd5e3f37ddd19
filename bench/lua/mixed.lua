-- The mixed flow: every new bill is created and read back; even bills are then rejected, odd ones
-- are paid (mock-only endpoint) and refunded. A step is sent only after the response of the step
-- before it arrived; responses are matched to their flow by the id in the body (refundId = billId),
-- because wrk does not tell which connection a response belongs to.

local seq = 0
local flows = {}    -- id -> index of the next step
local kinds = {}    -- id -> "reject" | "refund"
local ready = {}    -- FIFO of ids whose next step may be sent
local head, tail = 1, 0
local json_headers = {}
local plain_headers = {}
local base = "/partner/bill/v1/bills/"
local create_body = '{"amount":{"currency":"RUB","value":"10.00"},"expirationDateTime":"2030-01-01T00:00:00+03:00"}'
local refund_body = '{"amount":{"currency":"RUB","value":"5.00"}}'
local lost = 0

local steps = {
  reject = {"create", "get", "reject"},
  refund = {"create", "get", "pay", "refund"},
}

function init(args)
  parse_opts(args)
  prefix = opts.prefix .. "-" .. tostring(thread_id or 0) .. "-"
  json_headers["Authorization"] = wrk.headers["Authorization"]
  json_headers["Content-Type"] = "application/json"
  plain_headers["Authorization"] = wrk.headers["Authorization"]
end

local function build(id, step)
  if step == "create" then
    return wrk.format("PUT", base .. id, json_headers, create_body)
  elseif step == "get" then
    return wrk.format("GET", base .. id, plain_headers)
  elseif step == "reject" then
    return wrk.format("POST", base .. id .. "/reject", plain_headers)
  elseif step == "pay" then
    return wrk.format("POST", "/_mock/bills/" .. id .. "/pay", plain_headers)
  else
    return wrk.format("PUT", base .. id .. "/refunds/" .. id, json_headers, refund_body)
  end
end

function request()
  local id
  if head <= tail then
    id = ready[head]
    ready[head] = nil
    head = head + 1
  else
    seq = seq + 1
    id = prefix .. seq
    flows[id] = 1
    if seq % 2 == 0 then kinds[id] = "reject" else kinds[id] = "refund" end
  end
  return build(id, steps[kinds[id]][flows[id]])
end

function response(status, headers, body)
  count_response()
  local id = body:match('"refundId"%s*:%s*"([^"]+)"') or body:match('"billId"%s*:%s*"([^"]+)"')
  if status ~= 200 or id == nil or flows[id] == nil then
    lost = lost + 1
    return
  end
  local nxt = flows[id] + 1
  if nxt > #steps[kinds[id]] then
    flows[id] = nil
    kinds[id] = nil
  else
    flows[id] = nxt
    tail = tail + 1
    ready[tail] = id
  end
end
