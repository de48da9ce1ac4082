-- ab_compare.lua —— A/B 对比：同样的负载发给两个服务器（或同一服务器的两种配置），逐项比较。
-- A/B comparison: the same workload against two servers (or two configurations), metric by metric.
--
-- 运行 Run:
--   moonbench run examples/ab_compare.lua                                   # 两个模拟服务器
--   moonbench run examples/ab_compare.lua -- --base-url http://a:8000 --b-url http://b:8000
--
-- 概念 Concepts:
--   * 比较时要控制变量：同样的提示词、同样的到达过程（同一个随机种子）、同样的并发。
--   * 看相对变化（B 比 A 快/慢百分之几），并注意噪声：差别小于几个百分点时，多跑几次再下结论。
--   * 结果文件也可以用命令行比较：moonbench compare a.json b.json（可设定阈值，超出则返回非零）。

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("ab_compare.lua", "The same workload against two targets, compared", {
  { "--b-url", help = "server B (default: a second simulator)", help_zh = "服务器 B 的地址" },
  { "--num-prompts", type = "int", help = "requests per side (default 100; 20 with --quick)", help_zh = "每边的请求数" },
  { "--rate", type = "number", default = 5, help = "request rate (req/s)", help_zh = "请求速率" },
})
local n = args.num_prompts or ex.size(args, 100, 20)

-- 两个模拟服务器都扮演 L40S 上的 Qwen3-8B，只差一个 vLLM 调度参数 --max-num-batched-tokens（每一步最多算多少
-- token）：A 用默认的 2048，B 用 512。预算小，长提示词要分更多步预填充（TTFT 变长），但每一步更短，
-- 正在输出的请求卡得更少（ITL/TPOT 变短）—— 这是 vLLM 调优里常见的取舍。
-- Both simulators play Qwen3-8B on an L40S and differ in one vLLM setting, --max-num-batched-tokens:
-- A has the default 2048, B 512. A smaller budget prefills long prompts over more steps (slower
-- first token) but keeps steps short for the streams already decoding (faster tokens).
local a = ex.target(args, { preset = "qwen3-8b-l40s", max_num_batched_tokens = 2048 })
if args.base_url and not args.b_url then
  error("ab_compare.lua: with --base-url (server A), give server B too: --b-url http://...", 0)
end
local b = mb.target{ base_url = args.b_url, model = args.model, backend = args.backend, body = { ignore_eos = true },
  sim = (not args.b_url) and { preset = "qwen3-8b-l40s", max_num_batched_tokens = 512 } or nil }
local reqs = mb.dataset.random{ tokenizer = a.tokenizer, n = n, input_len = 1024, output_len = 64, seed = 6 }

local function measure(target)
  return mb.run{ target = target, requests = reqs, arrival = mb.arrival.poisson{ rate = args.rate, seed = 6 },
    progress = false }:summary()
end
local sa, sb = measure(a), measure(b)

local rows = {
  { "Mean TTFT (ms)", "mean_ttft_ms", false }, { "P99 TTFT (ms)", "p99_ttft_ms", false },
  { "Mean TPOT (ms)", "mean_tpot_ms", false }, { "P99 ITL (ms)", "p99_itl_ms", false },
  { "Mean E2EL (ms)", "mean_e2el_ms", false },
  { "Output tokens/s", "output_throughput", true }, { "Requests/s", "request_throughput", true },
}
print(string.format("\n  %-18s %10s %10s %9s", "metric", "A", "B", "B vs A"))
for _, r in ipairs(rows) do
  local va, vb = sa[r[2]] or 0, sb[r[2]] or 0
  local change = va ~= 0 and (vb - va) / va * 100 or 0
  local better = (r[3] and change > 0) or (not r[3] and change < 0)
  print(string.format("  %-18s %10.2f %10.2f %+8.1f%% %s", r[1], va, vb, change,
    math.abs(change) < 3 and "(about the same)" or (better and "(B better)" or "(A better)")))
end
if not args.base_url then
  -- 平均 TPOT 几乎不变（总计算量一样），差别在尾部：A 的长预填充步让正在输出的请求偶尔卡一下（P99 ITL）。
  print("\nThe same work in smaller steps: B's first tokens come later, its streams stall less (P99 ITL);\n"
    .. "which is better depends on your SLOs. Try --rate 8 to see both near saturation.")
end
