-- wrk script for compare.sh's "distinct originals" workload: every request a different ORIGINAL (nothing
-- for sizer to share between requests). Request number i, counted over all threads together (see
-- srcset-urls.lua), asks for key i % #KEYS at width 200 + (i * 37) % 1200 (every width from 200 to 1399 in
-- turn): no original is asked twice before #KEYS requests. compare.sh runs it through a copy of run-http.sh, under the name
-- cold-urls.lua. env KEYS = comma-separated keys under the server's root (many); STYLE = "w" or "thumbor".
local keys = {}
for k in string.gmatch(os.getenv("KEYS") or "kleiber-6028x3391.jpg", "[^,]+") do keys[#keys + 1] = k end
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
  for _, t in ipairs(threads) do t:set("nthreads", #threads) end
end
local n = 0
function request()
  local i = n * (nthreads or 1) + ((tid or 1) - 1)
  n = n + 1
  local key = keys[(i % #keys) + 1]
  local width = 200 + (i * 37) % 1200
  if os.getenv("STYLE") == "thumbor" then
    return wrk.format("GET", "/unsafe/" .. width .. "x0/" .. key)
  end
  return wrk.format("GET", "/w/" .. width .. "/" .. key)
end
