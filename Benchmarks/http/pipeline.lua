-- wrk script for S3: every write carries PIPELINE (default 16) GET / requests back to back.
-- wrk counts each response, so req/s and latency are per request.
local depth = tonumber(os.getenv("PIPELINE") or "16")
local batch

function init(args)
  local one = wrk.format("GET", "/")
  batch = string.rep(one, depth)
end

function request()
  return batch
end
