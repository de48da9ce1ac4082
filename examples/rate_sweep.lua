-- rate_sweep.lua —— 速率扫描（guidellm 的 sweep 方式）：从"一次一个"到"全部一起"，中间均匀取几个速率。
-- A rate sweep in guidellm's manner: one at a time, all at once, and evenly spaced rates in between.
--
-- 运行 Run:  moonbench run examples/rate_sweep.lua [-- --base-url ... --rates 8 --out results/sweep]
--
-- 概念 Concepts:
--   * 同步（synchronous）：一次只发一个请求 —— 单个用户能得到的最好延迟，也是最低的吞吐量。
--   * 最大吞吐（throughput）：所有请求同时发出 —— 服务器的最大吞吐量，延迟最差。
--   * 中间的速率：在两者之间均匀取点，泊松到达。把结果画成曲线，就能看到"吞吐—延迟"的权衡。
--   * 每个点一个结果文件，之后：moonbench aggregate DIR（表格）、moonbench report DIR（图表网页）。

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("rate_sweep.lua", "Synchronous, max throughput, and rates in between", {
  { "--rates", type = "int", help = "rates between the two ends (default 6; 2 with --quick)", help_zh = "中间取几个速率" },
  { "--num-prompts", type = "int", help = "requests per point (default 100; 20 with --quick)", help_zh = "每个点的请求数" },
  { "--out", help = "directory for the result files (default: a temporary one)", help_zh = "结果文件目录" },
})
local out = args.out or (os.tmpname() .. "-sweep")

-- 模拟服务器扮演一张 L40S 上的 Qwen3-8B：并发越高吞吐越高，但每个 token 越慢。
-- The simulator plays Qwen3-8B on an L40S: concurrency buys throughput and costs latency.
local target = ex.target(args, { preset = "qwen3-8b-l40s" })
local reqs = mb.dataset.random{ n = 300, input_len = 256, output_len = 32, seed = 4 }

local sweep = mb.rate_sweep{
  target = target, requests = reqs,
  rates = args.rates or ex.size(args, 6, 2),
  num_requests = args.num_prompts or ex.size(args, 100, 20),
  save_dir = out,
  -- 每个点发同一批提示词：先清空前缀缓存，否则后面的点命中缓存、TTFT 偏低。
  -- Every point sends the same prompts: empty the prefix cache first.
  reset_prefix_cache = ex.reset_prefix_cache(args, target),
}

-- 汇总成 CSV（与 `moonbench aggregate` 相同）。Aggregate the files into a CSV.
local csv = mb.aggregate(out)
print(string.format("\n%d result files in %s\ntable: %s\nchart: moonbench report %s -o %s/report.html",
  #sweep.points, out, csv, out, out))
