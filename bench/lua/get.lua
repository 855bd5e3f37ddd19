-- GET one existing bill (opts.bill_id) over and over.

function init(args)
  parse_opts(args)
  wrk.method = "GET"
  wrk.path = "/partner/bill/v1/bills/" .. opts.bill_id
end

function response(status, headers, body)
  count_response()
end
