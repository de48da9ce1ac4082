-- trace_replay.lua —— 轨迹回放：按线上真实请求的时间和长度重放流量（Mooncake 轨迹）。
-- Trace replay: send requests with the timing and lengths recorded from production (a Mooncake trace).
--
-- 运行 Run:
--   moonbench run examples/trace_replay.lua                         # 内置的 200 条样本
--   moonbench run examples/trace_replay.lua -- --trace mooncake_trace.jsonl --scale 0.5 --base-url ...
--
-- 概念 Concepts:
--   * Mooncake 轨迹每行一个请求：timestamp（毫秒）、input_length、output_length、hash_ids。
--     hash_ids 相同的 512-token 块内容完全相同 —— 所以回放时前缀缓存的命中情况和线上一致。
--   * scale 缩放时间：0.5 = 两倍速回放（同样的请求挤在一半的时间里，负载翻倍）。
--   * 回放的好处：流量的"形状"（突发、长短请求混合）是真实的，不是假设出来的泊松过程。

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("trace_replay.lua", "Replay a Mooncake trace at its recorded timestamps", {
  { "--trace", help = "Mooncake trace JSONL (default: a bundled 200-request sample)", help_zh = "Mooncake 轨迹文件" },
  { "--scale", type = "number", help = "time scale, 0.5 = twice as fast (default 0.05; 0.005 with --quick)",
    help_zh = "时间缩放，0.5 = 两倍速" },
  { "--num-prompts", type = "int", help = "replay only the first N requests", help_zh = "只回放前 N 个请求" },
})

-- 内置样本写到临时文件（数据集从文件读取）。The bundled sample goes to a temporary file.
local path = args.trace
if not path then
  path = os.tmpname() .. "-mooncake-sample.jsonl"
  local f = assert(io.open(path, "w"))
  -- assert 会把所有参数原样返回，所以先取出数据再写（否则错误信息也会被写进文件）。
  -- assert returns all its arguments: take the data first, or the message is written too.
  local data = assert(mb.bundled("examples/data/mooncake_sample.jsonl"), "the bundled sample is missing")
  f:write(data)
  f:close()
end

local target = ex.target(args, { ttft_ms = 30, itl_ms = 2, prefill_us_per_token = 2 })
local reqs = mb.dataset.mooncake{ path = path, tokenizer = target.tokenizer,
  n = args.num_prompts or ex.size(args, nil, 40), seed = 0 }
local ts = reqs:timestamps()
print(string.format("%d requests, recorded over %.0f s; replaying at x%s speed", #reqs, ts[#ts] - ts[1],
  1 / (args.scale or ex.size(args, 0.05, 0.005))))

local res = mb.run{
  target = target, requests = reqs,
  arrival = mb.arrival.trace{ timestamps = reqs, scale = args.scale or ex.size(args, 0.05, 0.005) },
}
res:print{ lang = args.lang }
local s = res:summary()
print(string.format("\nReplayed %d requests (%d input tokens) in %.1f s; P99 TTFT %.0f ms.",
  s.completed, s.total_input_tokens, s.duration, s.p99_ttft_ms))
if not args.trace then os.remove(path) end
