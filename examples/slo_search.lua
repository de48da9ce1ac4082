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

-- 模拟服务器扮演一张 L40S 上的 Qwen3-8B（类似 vLLM 的 step 引擎，见 docs/zh/simulator.md）。
-- 它没有写死的容量：速率越高批越大、每一步越慢，超过某个速率请求开始排队，TTFT 失控。
-- The simulator plays Qwen3-8B on an L40S; its capacity is not written in, it comes from batching.
local target = ex.target(args, { preset = "qwen3-8b-l40s" })
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
  -- 每次探测发的是同一批提示词：不清空前缀缓存，后面的探测会命中缓存、容量被高估。
  -- Every probe sends the same prompts: empty the prefix cache first, or later probes hit it.
  reset_prefix_cache = ex.reset_prefix_cache(args, target),
}

if answer.value then
  print(string.format("\nAnswer: about %.1f req/s (%s).", answer.value, answer.bracket))
  if not args.base_url then
    print("Try --ttft-ms 100 or --tpot-ms 40: a stricter SLO leaves less room, and the answer drops.")
  end
end
