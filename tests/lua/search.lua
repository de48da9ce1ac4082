-- slo_search's every decision matches what the simulator recorded; rate_sweep writes one result per point.
local mb = require "moonbench"
local function check(cond, what) if not cond then error("check failed: " .. what, 2) end end
local dir = mb.env("MOONBENCH_SEARCH_DIR")

-- 2 slots, 10 ms to the first token: above some rate requests queue and TTFT grows past the SLO.
-- Each probe is judged here against what the simulator recorded it did (t:sim_truth), not against
-- a capacity computed from its settings.
local target = mb.target{ backend = "openai", body = { ignore_eos = true }, sim = { ttft_ms = 10, itl_ms = 1, max_running = 2 } }
local reqs = {}
for i = 1, 50 do reqs[i] = { prompt = "the moon " .. i, max_tokens = 8 } end
local slo_s, goal = 0.040, 0.9
local truths = {}
local function on_probe(p, res)
  -- The server's account: when it received each request and when it wrote the first token.
  local within, n, first, last, diffs = 0, 0, math.huge, -math.huge, {}
  for _, r in ipairs(res:records()) do
    local t = target:sim_truth(r.request_id)
    check(t ~= nil, "the simulator kept the truth of " .. r.request_id)
    n = n + 1
    if r.success and t.ttft and t.ttft <= slo_s then within = within + 1 end
    first, last = math.min(first, t.received), math.max(last, t.received)
    -- The client's TTFT contains the server's (plus loopback and client delays).
    if r.ttft then
      check(r.ttft >= t.ttft - 0.001, string.format("client TTFT %.4f s vs server %.4f s", r.ttft, t.ttft))
      diffs[#diffs + 1] = r.ttft - t.ttft
    end
  end
  -- Typically those delays are small, even on a busy machine (a single request may be late).
  table.sort(diffs)
  check(#diffs > 0 and diffs[(#diffs + 1) // 2] < 0.005,
    string.format("median client - server TTFT %.4f s", diffs[(#diffs + 1) // 2] or -1))
  truths[#truths + 1] = { share = within / n, rate = (n - 1) / (last - first), n = n }
end
local a = mb.slo_search{ target = target, requests = reqs, slo = { ttft_ms = slo_s * 1000 }, goal = goal, start = 10,
  arrival = "constant", probe_seconds = 1, tolerance = 0.05, server_metrics = false, save_dir = dir .. "/slo",
  tail_samples = 10, on_probe = on_probe, print = false }
check(a.value and a.high and a.high > a.value, "a bracket: " .. a.bracket)
check(#a.probes >= 5 and #truths == #a.probes and a.probes[#a.probes].path ~= nil, "probes saved")
check(a.bracket:find("probes", 1, true) and a.low_requests >= 100, a.bracket)
for i, p in ipairs(a.probes) do
  local t = truths[i]
  -- Sized for the goal's tail (10 / (1 - 0.9)); the rate it reports is the rate the server saw.
  check(p.requests >= 100 and p.requests == t.n, "probe size " .. p.requests)
  check(math.abs(p.achieved - t.rate) <= 0.03 * t.rate,
    string.format("probe %d: achieved %.2f req/s, the server received %.2f req/s", i, p.achieved, t.rate))
  -- Its pass/fail is the server's verdict, unless the server's share sits within 3 points of the goal
  -- (where a sub-millisecond client delay may tip a request over the SLO).
  if math.abs(t.share - goal) > 0.03 then
    check(p.pass == (t.share >= goal), string.format("probe %d at %.1f req/s: %s, but the server shows %.1f%% within the SLO",
      i, p.achieved, p.pass and "pass" or "fail", t.share * 100))
  end
end
-- The answer is the best passing probe, and the next probe above it failed by the server's account too.
local best, fail
for i, p in ipairs(a.probes) do
  if p.pass and (not best or p.value > a.probes[best].value) then best = i end
  if not p.pass and (not fail or p.value < a.probes[fail].value) then fail = i end
end
check(a.value == a.probes[best].achieved and a.high == a.probes[fail].achieved, "answer is the bracket's ends")
check(truths[fail].share < goal + 0.03, string.format("the failing end had %.1f%% within the SLO", truths[fail].share * 100))

local sw = mb.rate_sweep{ target = target, requests = reqs, rates = 2, num_requests = 20, save_dir = dir .. "/sweep", print = false }
check(#sw.points == 4, "synchronous + throughput + 2 rates, got " .. #sw.points)
check(sw.points[1].kind == "synchronous" and sw.points[2].kind == "throughput", "kinds")
check(sw.points[3].rate < sw.points[4].rate and sw.points[4].rate < sw.points[2].rate, "rates in between")
local path, rows = mb.aggregate(dir .. "/sweep")
check(path ~= nil, "aggregated")
print("SEARCH OK")
