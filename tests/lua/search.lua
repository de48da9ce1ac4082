-- slo_search finds a simulator's known capacity; rate_sweep writes one result per point.
local mb = require "moonbench"
local function check(cond, what) if not cond then error("check failed: " .. what, 2) end end
local dir = mb.env("MOONBENCH_SEARCH_DIR")

-- Capacity: 2 slots, each request takes 10 ms + 7 x 1 ms = 17 ms -> 2 / 0.017 = 117.6 req/s.
-- With evenly spaced arrivals nothing queues below it, and the queue grows without bound above it.
local capacity = 2 / 0.017
local target = mb.target{ backend = "openai", body = { ignore_eos = true }, sim = { ttft_ms = 10, itl_ms = 1, max_running = 2 } }
local reqs = {}
for i = 1, 50 do reqs[i] = { prompt = "the moon " .. i, max_tokens = 8 } end
local a = mb.slo_search{ target = target, requests = reqs, slo = { ttft_ms = 40 }, goal = 0.9, start = 10,
  arrival = "constant", probe_seconds = 1, tolerance = 0.05, server_metrics = false, save_dir = dir .. "/slo",
  tail_samples = 10 }
-- Stated tolerance: the answer is within 80%..105% of the true capacity.
check(a.value and a.value >= 0.8 * capacity and a.value <= 1.05 * capacity,
  string.format("found %s req/s, capacity %.1f", tostring(a.value), capacity))
check(a.high and a.high > a.value and a.high <= 1.3 * capacity, "bracket " .. tostring(a.high))
check(#a.probes >= 5 and a.probes[#a.probes].path ~= nil, "probes saved")
check(a.bracket:find("probes", 1, true) and a.low_requests >= 100, a.bracket)
-- Each probe is judged at the rate it achieved, and sized for the goal's tail (10 / (1 - 0.9)).
for _, p in ipairs(a.probes) do
  check(p.requests >= 100, "probe size " .. p.requests)
  check(p.achieved > 0 and math.abs(p.achieved - p.value) <= 0.2 * p.value, "achieved " .. p.achieved .. " for " .. p.value)
end

local sw = mb.rate_sweep{ target = target, requests = reqs, rates = 2, num_requests = 20, save_dir = dir .. "/sweep", print = false }
check(#sw.points == 4, "synchronous + throughput + 2 rates, got " .. #sw.points)
check(sw.points[1].kind == "synchronous" and sw.points[2].kind == "throughput", "kinds")
check(sw.points[3].rate < sw.points[4].rate and sw.points[4].rate < sw.points[2].rate, "rates in between")
local path, rows = mb.aggregate(dir .. "/sweep")
check(path ~= nil, "aggregated")
print("SEARCH OK")
