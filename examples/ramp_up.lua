-- ramp_up.lua —— 斜坡加压：请求速率从低到高平滑上升，一次运行就看到服务器在哪个负载下"变慢"。
-- A ramp: the request rate rises smoothly, so one run shows the load at which the server slows down.
--
-- 运行 Run:  moonbench run examples/ramp_up.lua [-- --base-url ... --from 1 --to 50 --duration 60]
--
-- 概念 Concepts:
--   * mb.arrival.ramp{ from, to, duration }：第 t 秒的速率是 from + (to-from)·t/duration（线性），
--     也可以 shape = "exponential"（按比例增长，低负载段更细）。
--   * vLLM 的 --ramp-up-strategy 是按"请求序号"升速率；这里按"时间"，更容易和监控曲线对照。
--   * 结果按时间分段统计：每一段的实际速率、TTFT —— TTFT 开始上升的那一段就是容量附近。

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("ramp_up.lua", "A request-rate ramp, reported second by second", {
  { "--from", type = "number", default = 5, help = "start rate (req/s)", help_zh = "起始速率" },
  { "--to", type = "number", default = 90, help = "end rate (req/s)", help_zh = "终点速率" },
  { "--duration", type = "number", help = "ramp length in seconds (default 20; 2 with --quick)", help_zh = "斜坡时长（秒）" },
  { "--shape", default = "linear", choices = { "linear", "exponential" }, help = "how the rate rises", help_zh = "增长方式" },
})
local duration = args.duration or ex.size(args, 20, 2)

-- 模拟服务器扮演一张 L40S 上的 Qwen3-8B（step 引擎）：没有写死的容量，速率超过它能批处理的量时开始排队。
-- The simulator plays Qwen3-8B on an L40S: past what its batches can carry, requests queue.
local target = ex.target(args, { preset = "qwen3-8b-l40s" })
-- 提示词要够多，整个斜坡都不重复（重复的提示词会命中服务器的前缀缓存）。
-- Enough prompts that none repeats during the ramp (a repeat would hit the prefix cache).
local reqs = mb.dataset.random{ n = math.ceil((args.from + args.to) / 2 * duration) + 50, input_len = 128,
  output_len = 32, seed = 2 }

local res = mb.run{
  target = target, requests = reqs,
  arrival = mb.arrival.ramp{ from = args.from, to = args.to, duration = duration, shape = args.shape },
  num_requests = 100000,          -- 斜坡结束就停止 / the ramp's end stops the run
  progress = false,
}
res:print{ lang = args.lang }

-- 按发送时间分 10 段：每段的请求数、实际速率、TTFT 中位数。Ten time slices.
local slices, width = {}, duration / 10
for _, r in ipairs(res:records()) do
  local k = math.min(10, math.floor(r.scheduled_time / width) + 1)
  slices[k] = slices[k] or { n = 0, ttfts = {} }
  slices[k].n = slices[k].n + 1
  if r.ttft then table.insert(slices[k].ttfts, r.ttft * 1000) end
end
print("\n  time (s)     rate(req/s)  median TTFT (ms)")
for k = 1, 10 do
  local sl = slices[k] or { n = 0, ttfts = {} }
  table.sort(sl.ttfts)
  local med = #sl.ttfts > 0 and sl.ttfts[math.ceil(#sl.ttfts / 2)] or 0
  print(string.format("  %5.1f-%-5.1f  %8.1f     %10.1f  %s", (k - 1) * width, k * width, sl.n / width, med,
    string.rep("#", math.min(40, math.floor(med / 25)))))
end
