-- wrk script for compare.sh's cold HTTP workloads: every request a variant never asked before in the run.
-- Request number i is counted over all threads together (shared/bench's cold-urls.lua strides its index by
-- 16 per request, so each thread repeats its (key, width) pairs after 300 requests, which a fast server
-- reaches within seconds and then answers from its cache). compare.sh runs it through a copy of
-- run-http.sh, under the name cold-urls.lua.
-- env KEYS = comma-separated keys under the server's root; STYLE = "w" (default) or "thumbor";
--     URLS = "srcset" (default): key i % #KEYS at width 200 + (floor(i / #KEYS) * 197) % 1200, a few
--            originals each asked at widths about 200 px apart, as a srcset does (197 is prime to 1200:
--            all 1200 widths come before a repeat, so nothing repeats before #KEYS * 1200 requests);
--            "distinct": key i % #KEYS at width 200 + (i * 37) % 1200, with many keys: no original is
--            asked twice before #KEYS requests.
local keys = {}
for k in string.gmatch(os.getenv("KEYS") or "kleiber-6028x3391.jpg", "[^,]+") do keys[#keys + 1] = k end
local distinct = os.getenv("URLS") == "distinct"
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
  -- Every thread learns the final count: setup runs for all of them before any starts.
  for _, t in ipairs(threads) do t:set("nthreads", #threads) end
end
local n = 0
function request()
  local i = n * (nthreads or 1) + ((tid or 1) - 1)
  n = n + 1
  local key = keys[(i % #keys) + 1]
  local step = distinct and i * 37 or math.floor(i / #keys) * 197
  local width = 200 + step % 1200
  if os.getenv("STYLE") == "thumbor" then
    return wrk.format("GET", "/unsafe/" .. width .. "x0/" .. key)
  end
  return wrk.format("GET", "/w/" .. width .. "/" .. key)
end
