-- multi_turn_chat.lua —— 多轮对话的虚拟用户：每个用户问一个问题、等回答、想一会儿、接着问。
-- Virtual users in multi-turn chats: ask, wait for the answer, think, ask again.
--
-- 运行 Run:  moonbench run examples/multi_turn_chat.lua [-- --base-url ... --users 50 --turns 4]
--
-- 概念 Concepts:
--   * 闭环（closed loop）：用户等到回答才发下一句，所以服务器越慢，请求来得越少 —— 和真实用户一样。
--     mb.run 是开环（open loop）：不管上一个请求，到点就发。
--   * 对话历史（history）：每一轮都把之前的问答一起发出去，提示词越来越长；
--     服务器的前缀缓存（prefix caching）能复用前几轮算过的部分。看每一轮的 TTFT 如何变化。
--   * 思考时间（think time）：u:sleep(秒)，模拟用户阅读和打字。

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("multi_turn_chat.lua", "Multi-turn chat users", {
  { "--users", type = "int", help = "virtual users (default 40; 6 with --quick)", help_zh = "虚拟用户数" },
  { "--turns", type = "int", default = 4, help = "turns per conversation", help_zh = "每段对话的轮数" },
  { "--think", type = "number", help = "mean think time between turns, seconds (default 1; 0.05 with --quick)",
    help_zh = "两轮之间的思考时间（秒）" },
})
local users = args.users or ex.size(args, 40, 6)
local think = args.think or ex.size(args, 1.0, 0.05)

-- 模拟服务器扮演一张 L40S 上的 Qwen3-8B（step 引擎）：前几轮的历史已在前缀缓存里，只有新的部分要预填充；
-- 用户越多，批越大，每个 token 越慢。
-- The simulator plays Qwen3-8B on an L40S: earlier turns are in the prefix cache, only new text is
-- prefilled, and more users make bigger, slower steps.
local target = ex.target(args, { preset = "qwen3-8b-l40s" })

local res = mb.users{
  target = target,
  count = users,
  iterations = 1,
  ramp = ex.size(args, 5, 0.2),        -- 在 5 秒内陆续上线 / users arrive over 5 s
  scenario = function(u)
    -- 第一句：一段 300 token 的"文档" + 问题。First turn: a 300-token document and a question.
    local history = { { role = "user", content = u:prompt(300) .. " Summarize this." } }
    for turn = 1, args.turns do
      local r = u:chat{ messages = history, max_tokens = 48 }
      if not r.success then return end                       -- 失败的请求已被记录 / already recorded
      history[#history + 1] = { role = "assistant", content = r.text }
      history[#history + 1] = { role = "user", content = u:prompt(30) }   -- 追问 / a follow-up
      u:sleep(mb.rand.exponential(think))   -- 平均 think 秒、指数分布的思考时间 / exponential think time
    end
  end,
}
res:print{ lang = args.lang }   -- 表格最后有"虚拟用户"一节：每轮的提示长度与 TTFT

local s = res:summary()
print(string.format("\n%d users had %d conversations; a whole conversation took %.1f s on average (think time included).",
  users, s.users and s.users.conversations or users, (s.users and s.users.conversation_latency.mean_ms or 0) / 1000))
