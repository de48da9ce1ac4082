-- slo_search.lua —— 自动找容量：在"90% 的请求满足 SLO"的前提下，服务器最多能承受多大的请求速率？
-- Find the capacity: the highest request rate at which 90% of requests still meet the SLOs.
--
-- 运行 Run:  moonbench run examples/slo_search.lua [-- --base-url ... --ttft-ms 500 --tpot-ms 50]
--
-- 概念 Concepts:
--   * SLO（服务等级目标）：对延迟的承诺，例如"首 token ≤ 500 ms，每 token ≤ 50 ms"。
--   * goodput（有效吞吐）：满足全部 SLO 的请求数/秒。吞吐量高但大部分请求超时，对用户没有意义。
--   * 搜索方法：从一个小速率开始，每次翻倍，直到达标比例低于目标（找到上下界 bracketing）；
--     然后在上下界之间二分（bisection），直到区间足够窄。每一次尝试叫一次"探测"（probe）。
--   * 代码在 moonbench/search.lua（纯 Lua），可以复制后修改搜索策略。

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("slo_search.lua", "Highest request rate that meets the SLOs", {
  { "--ttft-ms", type = "number", default = 200, help = "TTFT objective (ms)", help_zh = "TTFT 目标（毫秒）" },
  { "--tpot-ms", type = "number", help = "TPOT objective (ms), optional", help_zh = "TPOT 目标（毫秒，可选）" },
  { "--goal", type = "number", default = 0.9, help = "share of requests that must meet the SLOs", help_zh = "达标比例" },
  { "--save-dir", help = "save every probe's result here", help_zh = "把每次探测的结果保存到这个目录" },
})

-- 模拟服务器：4 个并发槽，每个请求 50 + 15×5 = 125 ms —— 容量 4/0.125 = 32 req/s。
-- The simulator: 4 slots, 125 ms per request, so its capacity is 32 req/s.
local target = ex.target(args, { ttft_ms = 50, itl_ms = 5, max_running = 4 })
local reqs = mb.dataset.random{ n = 500, input_len = 256, output_len = 16, seed = 3 }

local answer = mb.slo_search{
  target = target, requests = reqs,
  slo = { ttft_ms = args.ttft_ms, tpot_ms = args.tpot_ms },
  goal = args.goal,
  start = 8,                                  -- 从 8 req/s 开始翻倍 / start at 8 req/s and double
  tolerance = ex.size(args, 0.05, 0.15),      -- 区间缩到 ±5% / stop within ±5%
  probe_seconds = ex.size(args, 10, 1),       -- 每次探测约 10 秒 / ~10 s per probe
  -- 每次探测至少让没达标的 10%（1 - goal）里有 20 个请求，P90 才有依据（goal 0.9 时至少 200 个请求）。
  -- 默认是 50（更稳，但每次探测更久）。Each probe's 10% tail holds at least 20 requests (default 50).
  tail_samples = ex.size(args, 20, 10),
  arrival = "poisson",
  save_dir = args.save_dir,
}

if answer.value then
  print(string.format("\nAnswer: about %.1f req/s (%s).", answer.value, answer.bracket))
  if not args.base_url then
    print("The simulator's true capacity is 32 req/s: above it requests queue and TTFT grows without bound.")
  end
end
