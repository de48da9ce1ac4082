-- quickstart.lua —— 第一个 moonbench 脚本：向服务器发一批请求，看看它有多快。
-- Your first moonbench script: send a batch of requests and see how fast the server answers.
--
-- 运行 Run:
--   moonbench run examples/quickstart.lua                      # 对内置模拟服务器（无需 GPU）
--   moonbench run examples/quickstart.lua -- --base-url http://127.0.0.1:8000 --model Qwen/Qwen3-8B
--
-- 它测的是什么（What it measures）:
--   * TTFT（首 token 时间）：发出请求后多久看到第一个字 —— 决定"卡不卡"。
--   * TPOT / ITL（每个 token 的时间 / token 间隔）：字是以多快的速度"蹦"出来的。
--   * E2EL（端到端延迟）：整段回答花了多久。
--   * 吞吐量（throughput）：每秒完成多少请求、输出多少 token —— 决定"能服务多少人"。
-- 并发（concurrency）是"同时在路上的请求数"。并发越高，吞吐量通常越高，但每个请求会变慢；
-- 压测就是为了找到两者之间合适的平衡点。

local mb = require "moonbench"
local ex = require "moonbench.example"   -- 例子共用的参数（--base-url、--model、--quick ...）

-- 1. 命令行参数（都有默认值，所以不带参数也能跑）。Flags, all with defaults.
local args = ex.args("quickstart.lua", "Your first benchmark", {
  { "--num-prompts", type = "int", help = "how many requests (default 50; 10 with --quick)", help_zh = "请求数" },
  { "--max-concurrency", type = "int", default = 8, help = "requests in flight at once", help_zh = "并发上限" },
})
local num_prompts = args.num_prompts or ex.size(args, 50, 10)

-- 2. 目标服务器。不写 --base-url 时，moonbench 会在本机启动一个模拟服务器：
--    它像真的 LLM 服务一样流式返回 token（首 token 约 50 ms，之后每 10 ms 一个）。
--    ex.target 还会让服务器输出满 max_tokens 个 token（ignore_eos），方便比较。
local target = ex.target(args, { ttft_ms = 50, itl_ms = 10 })

-- 3. 提示词：200 个 token 的随机文本，每个请求要 64 个输出 token。
--    Prompts of exactly 200 tokens for the target's tokenizer (default "words": one word = one token).
local requests = mb.dataset.random{ tokenizer = target.tokenizer, n = num_prompts, input_len = 200, output_len = 64, seed = 0 }

-- 4. 发送：所有请求一开始就"到达"（速率无限），但同时最多 max_concurrency 个在路上。
local res = mb.run{
  target = target,
  requests = requests,
  max_concurrency = args.max_concurrency,
  percentiles = { 50, 90, 99 },
}

-- 5. 看结果：与 vLLM 基准脚本相同格式的表格（res:print{ lang = "zh" } 打印中文）。
res:print{ lang = args.lang }

-- 结果也是普通的 Lua 表，可以自己取数：
local s = res:summary()
print(string.format("\nIn one sentence: %d requests, first token after %.0f ms (median), %.0f output tokens/s.",
  s.completed, s.median_ttft_ms, s.output_throughput))
