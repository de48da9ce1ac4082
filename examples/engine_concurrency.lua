-- engine_concurrency.lua —— 并发对 GPU 推理服务的影响：在模拟的 vLLM 式引擎（step 引擎）上扫并发。
-- What concurrency does to a GPU server, shown on the simulator's vLLM-like step engine.
--
-- 运行 Run:  moonbench run examples/engine_concurrency.lua [-- --preset qwen3-8b-l40s | --base-url ...]
--
-- 概念 Concepts:
--   * 连续批处理（continuous batching）：引擎每一步把所有在跑的请求放进同一批，各得一个 token。
--     批越大，每一步越慢 —— 所以并发越高，TPOT（每个输出 token 的时间）越大。
--   * 吞吐量（throughput）随并发上升，但增长得越来越慢：GPU 终会饱和。
--   * 新请求的预填充（prefill）要插进正在解码的批里，所以并发高时 TTFT 也会变大。
--   * KV 缓存不够时，引擎会抢占（preempt）最新的请求，之后重算 —— 客户端看到的是长时间卡顿（ITL 尖峰）。
--   * 这里的时间来自 docs/zh/simulator.md 里写明的耗时模型（模型配置 + GPU 规格书估算），不是真实 GPU。

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("engine_concurrency.lua", "Concurrency against a simulated vLLM-like engine", {
  { "--preset", default = "llama3-8b-h100",
    help = "model and GPU the simulator plays (moonbench serve-sim --preset list)",
    help_zh = "模拟的模型和 GPU（见 moonbench serve-sim --preset list）" },
})

-- 1. 扫并发 · A concurrency sweep
ex.title("Concurrency sweep", "并发扫描", args)
local target = ex.target(args, { preset = args.preset })
local levels = ex.size(args, { 1, 4, 16, 64 }, { 1, 8 })
local rows = {}
for i, c in ipairs(levels) do
  -- 每个并发级别 2 轮请求，输入 512 token、输出 64 token · two waves of requests per level
  local reqs = mb.dataset.random{ n = 2 * c, input_len = 512, output_len = 64, seed = i }
  local s = mb.run{ target = target, requests = reqs, max_concurrency = c, progress = false }:summary()
  rows[#rows + 1] = { c, s.median_ttft_ms, s.median_tpot_ms, s.output_throughput }
end
print(string.format("%12s %18s %18s %16s", "concurrency", "median TTFT (ms)", "median TPOT (ms)", "output tok/s"))
for _, r in ipairs(rows) do print(string.format("%12d %18.1f %18.2f %16.0f", r[1], r[2], r[3], r[4])) end
local first, last = rows[1], rows[#rows]
print(string.format("%dx the concurrency gave %.1fx the throughput, and each token took %.1fx as long.",
  last[1] // first[1], last[4] / first[4], last[3] / first[3]))

-- 2. KV 缓存太小：抢占 · A KV cache too small: preemption
if not args.base_url then
  ex.title("A KV cache too small for the batch", "KV 缓存装不下整批请求", args)
  local small = ex.target(args, { preset = args.preset, kv_cache_tokens = 4096, max_model_len = 1024 })
  local reqs = mb.dataset.random{ n = 32, input_len = 256, output_len = 64, seed = 9 }
  local res = mb.run{ target = small, requests = reqs, max_concurrency = 32, progress = false }
  local preempted = 0
  for _, st in ipairs(small:sim_steps()) do preempted = preempted + st.preempted end
  -- 最长的 token 间隔就是被抢占请求的卡顿 · the longest gap between two tokens is a preempted request's stall
  local longest = 0
  for _, r in ipairs(res:records()) do
    for k = 2, #r.chunk_times do longest = math.max(longest, r.chunk_times[k] - r.chunk_times[k - 1]) end
  end
  print(string.format("32 requests of 320 tokens in a 4,096-token cache: %d preemptions; median ITL %.1f ms, "
    .. "longest gap %.1f ms (a preempted request's stall)", preempted, res:summary().median_itl_ms, longest * 1e3))
end
print("\nNext: docs/simulator.md explains the engine; try --preset qwen3-8b-l40s, or serve-sim --data-parallel 2.")
