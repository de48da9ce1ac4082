-- moonbench/search.lua —— 自动找负载点：SLO 搜索（slo_search）与速率扫描（rate_sweep）。
-- Goal seeking, written in Lua on top of mb.run so you can read and change it:
--   mb.slo_search{...}  the highest request rate (or concurrency) at which enough
--                       requests still meet the SLOs (bracketing, then bisection);
--   mb.rate_sweep{...}  guidellm-style sweep: a synchronous run, a max-throughput
--                       run, then N rates evenly spaced in between.
--
-- 概念 Concepts：
--   SLO（服务等级目标）：例如 "TTFT ≤ 500 ms 且 TPOT ≤ 50 ms"。
--   goodput（有效吞吐）：满足全部 SLO 的请求数 / 秒。这里看"达标比例" = 达标请求 / 全部请求
--   （失败的请求算不达标）。slo_search 找的是：达标比例仍 ≥ goal（如 90%）时的最大负载。

local M = {}

local function core() return require("moonbench.core") end
-- mb.run（会在回调出错时抛出带结果的错误）。The public mb.run, loaded when first used.
local function mb_run(o) return require("moonbench").run(o) end

-- 一次"探测"：在负载 x 下跑一轮，返回达标比例等信息。One probe at load x.
local function probe(o, x, i)
  local run = {
    target = o.target, requests = o.requests, slo = o.slo, progress = false,
    warmup = o.warmup, server_metrics = o.server_metrics, reset_prefix_cache = o.reset_prefix_cache,
  }
  -- 每次探测的请求数：要让"不达标"的那一小部分（1 - goal）至少有 tail_samples 个样本，
  -- 否则 goal = 0.99 时几十个请求根本判断不了 P99。
  -- Enough requests that the goal's tail (1 - goal) holds at least tail_samples of them.
  local tail = math.ceil((o.tail_samples or 50) / math.max(1 - o.goal, 0.001))
  if o.by == "concurrency" then
    run.max_concurrency = x
    run.num_requests = o.num_requests or math.max(tail, x * 10)
    run.arrival = math.huge
  else
    local n = o.num_requests or math.max(tail, 10, math.floor(x * o.probe_seconds + 0.5))
    run.num_requests = n
    if o.arrival == "constant" then
      run.arrival = core().arrival.constant{ rate = x }
    else
      run.arrival = core().arrival.poisson{ rate = x, burstiness = o.burstiness or 1, seed = (o.seed or 0) + i }
    end
    run.max_concurrency = o.max_concurrency
  end
  local res = mb_run(run)
  local s = res:summary()
  local measured = s.completed + s.failed
  local good = (s.goodput_ratio or 0) * s.completed
  local share = measured > 0 and good / measured or 0
  local path
  if o.save_dir then
    local name = string.format("slo-probe-%02d-%s-%s.json", i, o.by, tostring(x))
    path = res:save(name, { dir = o.save_dir, detailed = o.detailed,
      metadata = { slo_search_probe = i, slo_search_by = o.by, slo_search_value = x } })
  end
  -- 按实际达到的速率评判（而不是设定值）。Judged at the rate really achieved.
  local achieved = o.by == "rate" and (s.achieved_request_rate or s.request_throughput) or x
  return { value = x, achieved = achieved, requests = measured, share = share, pass = share >= o.goal,
    completed = s.completed, failed = s.failed,
    goodput = s.request_goodput, throughput = s.request_throughput,
    p99_ttft_ms = s.p99_ttft_ms, p99_tpot_ms = s.p99_tpot_ms, path = path }, res
end

local function fmt(x) return (x == math.floor(x)) and string.format("%d", x) or string.format("%.3g", x) end

--- 找到满足 SLO 的最大负载。Finds the highest load that keeps `goal` of requests within the SLOs.
-- mb.slo_search{
--   target = target, requests = reqs,           -- 与 mb.run 相同
--   slo = { ttft_ms = 500, tpot_ms = 50 },      -- 服务等级目标（至少一项）
--   goal = 0.9,                                 -- 达标比例至少 90%
--   by = "rate",                                -- "rate"（请求/秒）或 "concurrency"（并发数）
--   start = 1,                                  -- 从这个负载开始，每次翻倍直到不达标（bracketing）
--   max = nil,                                  -- 负载上限（可选）
--   tolerance = 0.05,                           -- 区间缩到 5% 以内就停止（二分 bisection）
--   max_probes = 14,                            -- 最多探测几次
--   probe_seconds = 10,                         -- 按速率搜索时，每次探测大约持续多少秒
--   arrival = "poisson",                        -- 或 "constant"（匀速，结果更稳定）
--   save_dir = "results/slo",                   -- 每次探测的结果都保存（可用 aggregate/report 查看）
--   on_probe = function(p, res) end,            -- 每次探测后调用（res：这次探测的结果对象）
--   tail_samples = 50,                          -- 每次探测至少让 (1 - goal) 的尾部有这么多个请求
--   reset_prefix_cache = false,                 -- 每次探测前清空服务器的前缀缓存（各次探测发同一批
--                                               -- 提示词；不清空时后面的探测命中缓存，容量被高估）
-- }
-- 返回 { value = 最大达标负载（实际达到的速率）, low = ..., high = ..., low_requests = ..., high_requests = ...,
--        probes = {...}, bracket = "文字说明" }
function M.slo_search(o)
  assert(type(o) == "table", "mb.slo_search: give a table of options")
  -- 选项表由 Rust 里的同一套机制检查（拼错的键会给出提示）。Options are checked by the one Rust mechanism.
  core().check_options("mb.slo_search", o)
  if not o.target or not o.requests then error("mb.slo_search: target and requests are required", 2) end
  if type(o.slo) ~= "table" or next(o.slo) == nil then
    error("mb.slo_search: slo is required, e.g. slo = { ttft_ms = 500, tpot_ms = 50 }", 2)
  end
  o.goal = o.goal or 0.9
  o.by = o.by or "rate"
  if o.by ~= "rate" and o.by ~= "concurrency" then error("mb.slo_search: by must be \"rate\" or \"concurrency\"", 2) end
  o.tolerance = o.tolerance or 0.05
  o.probe_seconds = o.probe_seconds or 10
  local integer = o.by == "concurrency"
  local max_probes = o.max_probes or 14
  local probes = {}
  local function run_probe(x)
    if integer then x = math.max(1, math.floor(x + 0.5)) end
    local p, res = probe(o, x, #probes + 1)
    probes[#probes + 1] = p
    -- 第二个参数是这次探测的结果对象（res:records() 可看每个请求），用完即丢，不占内存。
    -- The probe's result object goes to on_probe only, so probes do not pile up records.
    if o.on_probe then o.on_probe(p, res) end
    if o.print ~= false then
      print(string.format("probe %2d: %s %-8s -> %5.1f%% of requests within the SLOs (%s)", #probes, o.by, fmt(x),
        p.share * 100, p.pass and "pass" or "fail"))
    end
    return p
  end

  -- 1) 找区间：从 start 开始翻倍，直到不达标。Bracket: double until a probe fails.
  local low, high
  local x = o.start or 1
  while #probes < max_probes and not core().interrupted() do
    local p = run_probe(x)
    if p.pass then
      low = p.value
      if o.max and p.value >= o.max then break end
      x = o.max and math.min(p.value * 2, o.max) or p.value * 2
    else
      high = p.value
      break
    end
  end
  -- 2) 二分：在 [low, high] 之间缩小。Bisect between the last pass and the first fail.
  while low and high and #probes < max_probes and not core().interrupted() do
    if (high - low) <= o.tolerance * low or (integer and high - low <= 1) then break end
    local mid = (low + high) / 2
    if integer then mid = math.floor(mid) end
    if mid <= low then break end
    local p = run_probe(mid)
    if p.pass then low = p.value else high = p.value end
  end

  local unit = o.by == "rate" and "req/s" or "concurrent requests"
  -- 答案是一个区间：最后一次达标与第一次不达标的探测（按实际速率），附上各自的请求数。
  -- 区间宽度不是统计意义上的置信度。The answer is a bracket of achieved loads with their sample counts.
  local best_pass, first_fail
  for _, p in ipairs(probes) do
    if p.pass and (not best_pass or p.value > best_pass.value) then best_pass = p end
    if not p.pass and (not first_fail or p.value < first_fail.value) then first_fail = p end
  end
  local answer = { value = best_pass and best_pass.achieved, low = best_pass and best_pass.achieved,
    high = first_fail and first_fail.achieved, low_requests = best_pass and best_pass.requests,
    high_requests = first_fail and first_fail.requests, probes = probes, by = o.by, goal = o.goal }
  if not best_pass then
    answer.bracket = string.format("even %s %s missed the goal; try a lower start", fmt(probes[1].value), unit)
  elseif not first_fail then
    answer.bracket = string.format("every probe passed up to %s %s (raise max or max_probes to find the limit)",
      fmt(best_pass.achieved), unit)
  else
    answer.bracket = string.format("passes at %s %s (%d requests), fails at %s %s (%d requests), after %d probes",
      fmt(best_pass.achieved), unit, best_pass.requests, fmt(first_fail.achieved), unit, first_fail.requests, #probes)
  end
  answer.confidence = answer.bracket   -- 旧名字，保留兼容。The older name of `bracket`.
  if o.print ~= false then
    print(string.format("SLO search: %.0f%% of requests within %s at up to %s %s — %s",
      o.goal * 100, M.describe_slo(o.slo), answer.value and fmt(answer.value) or "?", unit, answer.bracket))
  end
  return answer
end

--- "TTFT ≤ 500 ms, TPOT ≤ 50 ms"
function M.describe_slo(slo)
  local parts = {}
  for _, k in ipairs{ "ttft_ms", "tpot_ms", "e2el_ms" } do
    if slo[k] then parts[#parts + 1] = string.format("%s <= %s ms", k:sub(1, -4):upper(), fmt(slo[k])) end
  end
  return table.concat(parts, ", ")
end

--- guidellm 风格的速率扫描。A guidellm-style sweep.
-- mb.rate_sweep{
--   target = target, requests = reqs,
--   rates = 8,                  -- 中间取几个速率（在同步速率与最大吞吐之间均匀分布）
--   num_requests = 100,         -- 每个点发多少请求（同步那一轮默认更少：20）
--   max_concurrency = nil,      -- 最大吞吐那一轮的并发上限（默认不限）
--   save_dir = "results/sweep", -- 每个点一个结果文件，之后 moonbench aggregate / report
--   seed = 0,
--   reset_prefix_cache = false, -- 每个点之前清空服务器的前缀缓存（各点发的是同一批提示词，
--                               -- 不清空时后面的点会直接命中缓存，TTFT 偏低）
--                               -- drop the server's prefix cache before each point
-- }
-- 返回 { points = { { kind = "synchronous"|"throughput"|"rate", rate = ..., path = ..., summary = s }, ... } }
function M.rate_sweep(o)
  assert(type(o) == "table", "mb.rate_sweep: give a table of options")
  core().check_options("mb.rate_sweep", o)
  if not o.target or not o.requests then error("mb.rate_sweep: target and requests are required", 2) end
  local n = o.num_requests or 100
  local k = o.rates or 8
  local points = {}
  local function save(res, kind, i, rate)
    if not o.save_dir then return nil end
    local name = string.format("sweep-%02d-%s%s.json", i, kind, rate and ("-" .. string.format("%.3g", rate)) or "")
    return res:save(name, { dir = o.save_dir, detailed = o.detailed, metadata = { sweep_kind = kind } })
  end
  local function say(msg) if o.print ~= false then print(msg) end end

  -- 1) 同步：一次只发一个请求，测出"单用户"速率。Synchronous: one request at a time.
  local sync = mb_run{ target = o.target, requests = o.requests, num_requests = o.sync_requests or math.min(n, 20),
    max_concurrency = 1, progress = false, label = "synchronous", reset_prefix_cache = o.reset_prefix_cache }
  local ss = sync:summary()
  points[#points + 1] = { kind = "synchronous", rate = ss.request_throughput, summary = ss, path = save(sync, "synchronous", 1) }
  say(string.format("synchronous: %.3g req/s (one at a time)", ss.request_throughput))
  -- 2) 最大吞吐：一次全部发出。Throughput: everything at once.
  local thr = mb_run{ target = o.target, requests = o.requests, num_requests = n, max_concurrency = o.max_concurrency,
    progress = false, label = "throughput", reset_prefix_cache = o.reset_prefix_cache }
  local ts = thr:summary()
  points[#points + 1] = { kind = "throughput", rate = ts.request_throughput, summary = ts, path = save(thr, "throughput", 2) }
  say(string.format("throughput:  %.3g req/s (all at once)", ts.request_throughput))
  -- 3) 中间均匀取 k 个速率（泊松到达）。k rates evenly spaced in between, Poisson arrivals.
  local lo, hi = ss.request_throughput, ts.request_throughput
  if hi <= lo then
    say("the server is no faster with concurrency than one at a time; no rates in between")
    return { points = points }
  end
  for i = 1, k do
    if core().interrupted() then break end
    local rate = lo + (hi - lo) * i / (k + 1)
    local res = mb_run{ target = o.target, requests = o.requests, num_requests = n, progress = false,
      arrival = core().arrival.poisson{ rate = rate, seed = (o.seed or 0) + i }, max_concurrency = o.max_concurrency,
      label = "sweep", reset_prefix_cache = o.reset_prefix_cache }
    local s = res:summary()
    points[#points + 1] = { kind = "rate", rate = rate, summary = s, path = save(res, "rate", 2 + i, rate) }
    say(string.format("rate %6.3g: achieved %.3g req/s, median TTFT %.1f ms, median TPOT %.2f ms",
      rate, s.request_throughput, s.median_ttft_ms, s.median_tpot_ms))
  end
  return { points = points }
end

return M
