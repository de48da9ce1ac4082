-- poisson_rate.lua —— 泊松到达：按"平均每秒 N 个请求"发送，看看不同负载下延迟怎么变。
-- Poisson arrivals: send N requests per second on average and watch latency change with load.
--
-- 运行 Run:  moonbench run examples/poisson_rate.lua [-- --base-url http://127.0.0.1:8000]
--
-- 概念 Concepts:
--   * 泊松到达（Poisson arrivals）：真实用户彼此独立地到来，请求间隔是随机的（指数分布），
--     平均速率是 rate。这比"整齐地每隔 1/rate 秒发一个"更接近线上流量，也更容易制造排队。
--   * burstiness（突发度）：1 = 泊松；< 1 更"扎堆"（一阵一阵地来）；> 1 更均匀。与 vLLM 的 --burstiness 相同。
--   * 当速率接近服务器容量时，请求开始排队，TTFT 会明显上升 —— 这就是要找的"拐点"。
--   The closer the rate gets to the server's capacity, the more requests queue and TTFT climbs.

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("poisson_rate.lua", "Poisson arrivals at several rates", {
  { "--rates", help = "request rates to try, req/s (default 10,30,50,70; 10,70 with --quick)", help_zh = "要尝试的请求速率" },
  { "--burstiness", type = "number", default = 1.0, help = "1 = Poisson, <1 burstier", help_zh = "突发度" },
})

-- 模拟服务器扮演一张 L40S 上的 Qwen3-8B（类似 vLLM 的 step 引擎）：速率越高，每一步批里的请求越多、
-- 每一步越慢；到了某个速率，来的请求比做完的快，就开始排队。没有写死的"容量"，它是算出来的。
-- The simulator plays Qwen3-8B on an L40S: more requests per step make each step slower, and past
-- some rate requests arrive faster than they finish and queue. No capacity is written in.
local target = ex.target(args, { preset = "qwen3-8b-l40s" })
local seconds = ex.size(args, 10, 1)   -- 每个速率跑多少秒 / seconds per rate

local rows = {}
local rates = args.rates or ex.size(args, "10,30,50,70", "10,70")
for rate in rates:gmatch("[^,]+") do
  rate = tonumber(rate)
  -- 每个速率用一批新的提示词（不同的 seed）：服务器有前缀缓存（prefix cache），
  -- 同样的提示词再发一遍会直接命中缓存，后面的速率就显得特别快 —— 这是压测里常见的陷阱。
  -- Fresh prompts for every rate: a server's prefix cache would serve repeated prompts from memory.
  local n = math.max(5, math.floor(rate * seconds))
  local reqs = mb.dataset.random{ n = n, input_len = 128, output_len = 32, seed = rate }
  local res = mb.run{
    target = target, requests = reqs,
    arrival = mb.arrival.poisson{ rate = rate, burstiness = args.burstiness, seed = 1 },
    num_requests = n,
    progress = false, server_metrics = false,
  }
  local s = res:summary()
  rows[#rows + 1] = s
  print(string.format("rate %5.1f req/s: achieved %5.1f, median TTFT %7.1f ms, P99 TTFT %7.1f ms, "
    .. "median TPOT %5.1f ms, %d failed", rate, s.achieved_request_rate or 0, s.median_ttft_ms, s.p99_ttft_ms,
    s.median_tpot_ms or 0, s.failed))
end

-- 读结果：速率越高，批越大，TPOT 逐渐变大；TTFT 在某个速率之后突然变大，说明服务器开始排队。
-- Reading it: TPOT grows with the batch; where P99 TTFT jumps, requests started to queue.
local knee
for i = 2, #rows do
  if rows[i].p99_ttft_ms > 2 * rows[1].p99_ttft_ms and not knee then knee = i end
end
print(knee and string.format("\nQueueing starts between rate #%d and #%d of your list.", knee - 1, knee)
  or "\nNo queueing at these rates: try higher ones (--rates).")
