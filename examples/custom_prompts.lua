-- custom_prompts.lua —— 在 Lua 里自己造提示词：不同任务（问答、摘要、写代码）混在一起，分别统计。
-- Prompts built in Lua: a mix of tasks (Q&A, summaries, code), each reported on its own.
--
-- 运行 Run:  moonbench run examples/custom_prompts.lua [-- --base-url ... --num-prompts 300]
--
-- 概念 Concepts:
--   * 线上流量往往是不同任务的混合：短问答（输入短、输出短）、摘要（输入长、输出短）、
--     写代码（输入短、输出长）。它们的 TTFT 和 E2EL 差别很大，混在一起的平均值会掩盖问题。
--   * 请求就是普通的 Lua 表：{ messages = {...}, max_tokens = N }。还可以加 body = {...} 设置采样参数。
--   * res:records() 给出每个请求的记录；按任务分组统计，每个任务一行。

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("custom_prompts.lua", "A mix of tasks built in Lua, reported per task", {
  { "--num-prompts", type = "int", help = "requests (default 150; 15 with --quick)", help_zh = "请求数" },
})
local n = args.num_prompts or ex.size(args, 150, 15)
local target = ex.target(args, { ttft_ms = 40, itl_ms = 5, prefill_us_per_token = 10 })
local tok = target.tokenizer

-- 随机文本（长度精确为 k 个 token）。Random text of exactly k tokens.
local filler = mb.dataset.random{ tokenizer = tok, n = 1, input_len = 4000, output_len = 1, seed = 5 }[1].prompt
local words = {}
for w in filler:gmatch("%S+") do words[#words + 1] = w end
local function text(k, offset) return table.concat(words, " ", offset, offset + k - 1) end

-- 三种任务：名字、输入长度、输出长度、占比。Three tasks: input/output lengths and shares.
local tasks = {
  { name = "qa",        input = 60,   output = 40,  share = 0.5, ask = "Answer briefly: " },
  { name = "summarize", input = 2000, output = 80,  share = 0.3, ask = "Summarize the text above." },
  { name = "code",      input = 120,  output = 400, share = 0.2, ask = "Write a Python function that " },
}
local reqs, kind = {}, {}
for i = 1, n do
  local r, acc = (i * 0.618034) % 1, 0   -- 确定性地按占比分配任务 / a deterministic mix
  local task = tasks[#tasks]
  for _, t in ipairs(tasks) do
    acc = acc + t.share
    if r < acc then task = t break end
  end
  local body = text(task.input, (i * 37) % 1500 + 1)
  reqs[i] = { messages = { { role = "user", content = task.ask .. body } }, max_tokens = task.output }
  kind[i] = task.name
end

local res = mb.run{ target = target, requests = reqs, arrival = mb.arrival.poisson{ rate = 20, seed = 5 },
  progress = false }
res:print{ lang = args.lang }

-- 按任务分组。Per task.
local by = {}
for _, rec in ipairs(res:records()) do
  local k = kind[rec.index + 1]
  by[k] = by[k] or { n = 0, ttft = 0, e2el = 0, out = 0 }
  if rec.success then
    local b = by[k]
    b.n, b.ttft, b.e2el, b.out = b.n + 1, b.ttft + rec.ttft, b.e2el + rec.e2el, b.out + rec.output_tokens
  end
end
print("\n  task        requests  mean TTFT (ms)  mean E2EL (s)  mean output tokens")
for _, t in ipairs(tasks) do
  local b = by[t.name]
  if b and b.n > 0 then
    print(string.format("  %-10s  %8d  %14.1f  %13.2f  %18.0f", t.name, b.n, b.ttft / b.n * 1000, b.e2el / b.n, b.out / b.n))
  end
end
