-- benches/users_10k.lua —— 一万个虚拟用户的速度基准：Lua 这一侧会不会成为瓶颈？
-- Speed benchmark: 10,000 virtual users, each a 3-turn chat, then the equivalent
-- open-loop run (same number of requests and concurrency), on loopback.
--
-- 一万个连接两端都在同一进程里会超过常见的文件数上限，所以模拟器单独起一个进程：
-- The simulator runs as its own process (both ends of 10k sockets in one process
-- exceed the usual open-file limit):
--   moonbench serve-sim --port 18300 --threads 1 --engine fixed &
--   moonbench run benches/users_10k.lua -- http://127.0.0.1:18300 10000
-- 两次运行之间等一分钟，让上一轮的 TIME_WAIT 连接释放（否则新建连接变慢）。
-- Wait a minute between runs so the previous run's TIME_WAIT sockets are gone.
local mb = require "moonbench"
local url = arg[1] or "http://127.0.0.1:18300"
local n = tonumber(arg[2]) or 10000
local target = mb.target{ backend = "openai-chat", base_url = url }

local t = mb.now()
local res = mb.users{
  target = target, count = n, iterations = 1, progress = false, server_metrics = false,
  scenario = function(u)
    local history = { { role = "user", content = u:prompt(64) } }
    for _ = 1, 3 do
      local r = u:chat{ messages = history, max_tokens = 16, body = { ignore_eos = true } }
      if not r.success then return end
      history[#history + 1] = { role = "assistant", content = r.text }
      history[#history + 1] = { role = "user", content = u:prompt(16) }
    end
  end,
}
local s = res:summary()
local h = s.client_health
print(string.format("users:     %d users, %d requests ok, %d failed; %.0f req/s over %.2f s (%.2f s wall); mean TTFT %.1f ms",
  n, s.completed, s.failed, s.request_throughput, s.duration, mb.now() - t, s.mean_ttft_ms))
print(string.format("           Lua thread CPU %.2f s = %.0f%% of the run; I/O threads %.0f%% busy",
  h.script_cpu_seconds, h.script_cpu_share * 100, h.cpu_share * 100))
-- 客户端读得及不及时：读延迟和"一次读到多个事件"的比例。Did the client read in time?
print(string.format("           client health %s: read lag p99 %.1f ms, max %.1f ms; chunks read together with the one before %.2f%%",
  h.verdict, h.read_lag_p99_ms, h.read_lag_max_ms, h.collapsed_chunk_share * 100))

mb.sleep(61)  -- TIME_WAIT
local tok = mb.tokenizer("words")
local base = mb.dataset.random{ tokenizer = tok, n = 3 * n, input_len = 96, output_len = 16, seed = 1 }
local reqs = {}
for i = 1, 3 * n do
  reqs[i] = { messages = { { role = "user", content = base[i].prompt } }, max_tokens = 16, body = { ignore_eos = true } }
end
t = mb.now()
local ol = mb.run{ target = target, requests = reqs, max_concurrency = n, progress = false, server_metrics = false }
local o = ol:summary()
print(string.format("open loop: %d requests ok; %.0f req/s over %.2f s (%.2f s wall); mean TTFT %.1f ms",
  o.completed, o.request_throughput, o.duration, mb.now() - t, o.mean_ttft_ms))
