-- wrk script: every request a different ORIGINAL (nothing for sizer to share between requests), with widths
-- cycling as in cold-urls.lua. compare.sh runs it through a copy of run-http.sh, under the name cold-urls.lua.
-- env KEYS = comma-separated keys under the server's root (many: the index only wraps after #KEYS requests
-- of all threads together); STYLE = "w" (default) or "thumbor".
local keys = {}
for k in string.gmatch(os.getenv("KEYS") or "kleiber-6028x3391.jpg", "[^,]+") do keys[#keys + 1] = k end
local n = 0
local counter = 1
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
function request()
  n = n + 1
  local t = tid or 0
  local i = n * 16 + t                           -- distinct per thread (tid < 16): no two threads share a key
  local key = keys[(i % #keys) + 1]
  local width = 200 + i % 1200
  if os.getenv("STYLE") == "thumbor" then
    return wrk.format("GET", "/unsafe/" .. width .. "x0/" .. key)
  end
  return wrk.format("GET", "/w/" .. width .. "/" .. key)
end
