-- wrk script of scripts/soak: a fixed mix of requests, each kind in its share of every 20.
--   8 hot       a small set of variants, asked again and again (memory tier)
--   4 304       the same, with the ETag in If-None-Match
--   4 cold      distinct variants (width x original), wrapping after many; later rounds hit the copy tier
--   2 404       originals that do not exist
--   2 400       URLs the grammar refuses
-- env IMAGES: comma-separated original keys; HOT: "path|etag;path|etag;..." (scripts/soak fetches them);
-- THREADS: wrk's -t, so that the threads' cold variants interleave instead of repeating each other's.
-- done() prints "status CODE COUNT" lines, every thread's counts added up.
local images = {}
for k in string.gmatch(os.getenv("IMAGES") or "", "[^,]+") do images[#images + 1] = k end
local hot = {}
for p, e in string.gmatch(os.getenv("HOT") or "", "([^|;]+)|([^;]+)") do hot[#hot + 1] = {p, e} end
local nthreads = tonumber(os.getenv("THREADS") or "1")

local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

counts = {}
local n = 0
local cold = 0
function request()
  n = n + 1
  local slot = n % 20
  if slot < 8 then
    return wrk.format("GET", hot[(n % #hot) + 1][1])
  elseif slot < 12 then
    local h = hot[(n % #hot) + 1]
    return wrk.format("GET", h[1], {["If-None-Match"] = h[2]})
  elseif slot < 16 then
    cold = cold + 1
    -- Widths 64-863 in a scrambled order (7919 is prime to 800), so that small and large variants are
    -- mixed from the first second on and the working set does not grow with the run; distinct until j
    -- wraps (800 x the originals).
    local j = cold * nthreads + (tid or 0)
    local width = 64 + (math.floor(j / #images) * 7919) % 800
    return wrk.format("GET", "/w/" .. width .. "/" .. images[(j % #images) + 1])
  elseif slot < 18 then
    return wrk.format("GET", "/w/300/missing/" .. (tid or 0) .. "-" .. n .. ".jpg")
  else
    return wrk.format("GET", "/w/0/" .. images[(n % #images) + 1])
  end
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, k in pairs(thread:get("counts")) do total[status] = (total[status] or 0) + k end
  end
  for status, k in pairs(total) do io.write(string.format("status %d %d\n", status, k)) end
  local e = summary.errors
  io.write(string.format("errors connect %d read %d write %d timeout %d status %d\n",
    e.connect, e.read, e.write, e.timeout, e.status))
  io.write(string.format("requests %d duration_us %d\n", summary.requests, summary.duration))
  io.write(string.format("latency_us p50 %d p99 %d max %d\n",
    latency:percentile(50), latency:percentile(99), latency.max))
end
