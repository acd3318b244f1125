-- wrk script for bench/batch.sh: POST the request body the assessor really
-- sends (captured by the bench) on every request.
--
--   WRK_BODY=request-body.json wrk -t2 -c64 -d10s -s bench/batch/post.lua URL
--
-- At the end it prints one line, "wrk-summary <requests> <seconds>
-- <non-2xx> <socket errors>", that the bench parses.
local path = assert(os.getenv("WRK_BODY"), "WRK_BODY must name the body file")
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()
-- The capture is one line of nginx's log; drop its newline.
body = body:gsub("\n$", "")

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("wrk-summary %d %.6f %d %d\n", summary.requests, summary.duration / 1e6,
        e.status, e.connect + e.read + e.write + e.timeout))
end
