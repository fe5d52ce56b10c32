-- wrk script for compare.sh's "srcset" workload: what a page's srcset asks of new images, a few originals
-- and many widths, every request a variant never asked before in the run. Same mix as shared/bench's
-- cold-urls.lua (its KEYS, widths 200-1399), but numbered across threads: that script strides its index
-- by 16 per request, so (key, width) repeat after 300 requests a thread, which a fast server reaches within
-- seconds and then answers from its cache. Here request number i (counted over all threads together) asks
-- for key i % #KEYS at width 200 + (floor(i / #KEYS) * 197) % 1200 (197 is prime to 1200: the widths of one
-- original jump by about 200 px, as a srcset's do, and cover all 1200 before repeating): nothing repeats
-- before #KEYS * 1200 requests.
-- compare.sh runs it through a copy of run-http.sh, under the name cold-urls.lua.
-- env KEYS = comma-separated keys under the server's root; STYLE = "w" (default) or "thumbor".
local keys = {}
for k in string.gmatch(os.getenv("KEYS") or "kleiber-6028x3391.jpg", "[^,]+") do keys[#keys + 1] = k end
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
  local width = 200 + (math.floor(i / #keys) * 197) % 1200
  if os.getenv("STYLE") == "thumbor" then
    return wrk.format("GET", "/unsafe/" .. width .. "x0/" .. key)
  end
  return wrk.format("GET", "/w/" .. width .. "/" .. key)
end
