-- Virtual users against the built-in simulator: request counts, multi-turn growth of
-- the prompt, per-turn metrics, think time and duration, spawn rate, script errors.
local mb = require "moonbench"
local function check(cond, what) if not cond then error("check failed: " .. what, 2) end end

local target = mb.target{ backend = "openai-chat", body = { ignore_eos = true }, sim = { ttft_ms = 5, itl_ms = 1 } }

-- 8 users x 2 conversations x 3 turns; the history grows by 4 answer + 5 question tokens a turn
local seen_ids = {}
local res = mb.users{
  target = target, count = 8, iterations = 2, progress = false, seed = 7,
  scenario = function(u)
    seen_ids[u.id] = (seen_ids[u.id] or 0) + 1
    local first = u:prompt(20)
    local _, words = first:gsub("%S+", "")
    check(words == 20, "u:prompt(20) gives 20 tokens of the words tokenizer, got " .. words)
    u.history = { { role = "user", content = first } }
    for turn = 1, 3 do
      local r = u:chat{ messages = u.history, max_tokens = 4 }
      check(r.success, "request ok: " .. tostring(r.error))
      check(r.turn == turn and r.user == u.id, "turn/user tags")
      check(r.output_tokens == 4 and #r.itls == 3 and r.ttft > 0.004, "answer table")
      u.history[#u.history + 1] = { role = "assistant", content = r.text }
      u.history[#u.history + 1] = { role = "user", content = u:prompt(5) }
    end
  end,
}
for id = 1, 8 do check(seen_ids[id] == 2, "user " .. id .. " ran its scenario twice") end
local s = res:summary()
check(s.completed == 48 and s.failed == 0, "48 requests, got " .. s.completed)
local path = res:save(nil, { dir = mb.env("MOONBENCH_USERS_DIR") })
local f = assert(io.open(path)); local saved = mb.json.decode(f:read("a")); f:close()
local us = saved.users
check(us and us.users == 8 and us.conversations == 16, "users section")
check(us.requests_per_user.min == 6 and us.requests_per_user.max == 6, "6 requests per user")
check(#us.by_turn == 3, "three turns")
for i, want in ipairs{ 20, 29, 38 } do
  check(us.by_turn[i].mean_prompt_tokens == want,
    string.format("turn %d prompt tokens %s, want %d", i, us.by_turn[i].mean_prompt_tokens, want))
  check(us.by_turn[i].requests == 16, "16 requests per turn")
end
check(us.conversation_latency.count == 16 and us.conversation_latency.mean_ms > 3 * 8, "conversation latency")
check(saved.client_health.script_cpu_seconds ~= nil, "Lua thread CPU is reported")
local recs = res:records()
check(#recs == 48 and recs[1].user ~= nil and recs[1].conversation ~= nil, "records carry user tags")

-- a duration-bound run with think time: no request starts after the end
local t0 = mb.now()
local r2 = mb.users{
  target = target, count = 4, duration = 0.4, progress = false,
  scenario = function(u)
    while true do
      u:complete{ prompt = "hello there", max_tokens = 2 }
      u:sleep(0.05)
    end
  end,
}
local s2 = r2:summary()
check(mb.now() - t0 < 2.0, "the run ends soon after its duration")
-- each loop takes ~5 + 1 + 50 ms: 4 users x ~7 loops
check(s2.completed >= 16 and s2.completed <= 40, "duration-bound count " .. s2.completed)
for _, rec in ipairs(r2:records()) do
  check(rec.start_time < 0.4, "request started after the end: " .. rec.start_time)
end

-- spawn_rate staggers the users' starts
local r3 = mb.users{
  target = target, count = 5, spawn_rate = 20, progress = false,
  scenario = function(u) u:complete{ prompt = "x", max_tokens = 1 } end,
}
local starts = {}
for _, rec in ipairs(r3:records()) do starts[rec.user] = rec.start_time end
for k = 1, 5 do
  check(starts[k] >= (k - 1) / 20 - 0.001, string.format("user %d started at %.3f", k, starts[k]))
end

-- a script error stops the run and is raised with its line
local ok, err = pcall(mb.users, {
  target = target, count = 3, progress = false,
  scenario = function(u)
    u:complete{ prompt = "x", max_tokens = 1 }
    if u.id == 2 then error("boom in user 2") end
  end,
})
check(not ok and tostring(err):find("boom in user 2", 1, true), "script error: " .. tostring(err))
local ok2, err2 = pcall(mb.users, { target = target, count = 2, scenario = function() end, spawn_rate = 1, ramp = 2 })
check(not ok2 and tostring(err2):find("not both", 1, true), tostring(err2))
local ok3, err3 = pcall(mb.users, { target = target, count = 2, scenarios = function() end })
check(not ok3 and tostring(err3):find("did you mean 'scenario'", 1, true), tostring(err3))
-- mb.rand: seeded, and the exponential's mean is right
mb.rand.seed(3)
local sum = 0
for _ = 1, 20000 do sum = sum + mb.rand.exponential(2.0) end
check(math.abs(sum / 20000 - 2.0) < 0.1, "exponential mean " .. sum / 20000)
local x = mb.rand.uniform(5, 6)
check(x >= 5 and x < 6 and mb.rand.choice{ "a" } == "a", "uniform and choice")
print("USERS OK")
