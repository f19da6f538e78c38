-- wrk pacing (wrk2 is not packaged): each connection waits connections*1000/RATE ms before each
-- request (wrk rounds it down to whole ms), so a run holds about RATE requests/s; wrk reports the rate
-- it held. Arguments after `--`: RATE CONNECTIONS.
--   wrk -t2 -c16 -d10s --latency -s benchmarks/paced.lua URL -- 1500 16
local interval_ms = 0
function init(args)
  interval_ms = tonumber(args[2]) * 1000 / tonumber(args[1])
end
function delay()
  return interval_ms
end
