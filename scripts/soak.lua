-- wrk script of scripts/soak: a fixed mix of requests, each kind in its share of every 20.
--   8 hot       a small set of variants, asked again and again (memory tier)
--   4 304       the same, with the ETag in If-None-Match
--   2 cold      a variant never asked before (width x quality x original: no repeat within hours)
--   2 warm      the cold variant asked 200 cold requests earlier: evicted from the small memory tier by
--               then, so served from the copy tier (the store)
--   2 404       originals that do not exist
--   2 400       URLs the grammar refuses
-- The mix is the same from the first minute to the last: nothing wraps around into another regime.
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

-- The i-th cold variant of this thread. Widths 64-863 in a scrambled order (7919 is prime to 800), so that
-- small and large variants are mixed from the first second on; then the next quality.
local function variant(i)
  local j = i * nthreads + (tid or 0)
  local k = math.floor(j / #images)
  local width = 64 + (k * 7919) % 800
  local quality = 40 + math.floor(k / 800) % 56
  return "/w/" .. width .. "/q/" .. quality .. "/" .. images[(j % #images) + 1]
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
  elseif slot < 14 then
    cold = cold + 1
    return wrk.format("GET", variant(cold))
  elseif slot < 16 then
    return wrk.format("GET", variant(math.max(1, cold - 200)))
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
