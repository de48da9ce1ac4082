-- A script ends its own run: on_response returning "stop", mb.stop(reason), an
-- error in a callback (raised with the result, which is also saved). Later runs
-- still start: a stop is the run's, not the process's.
local mb = require "moonbench"
local function check(cond, what) if not cond then error("check failed: " .. what, 2) end end
local dir = mb.env("MOONBENCH_STOP_DIR")

local t = mb.target{ sim = { ttft_ms = 2, itl_ms = 1 } }
local reqs = mb.dataset.random{ n = 200, input_len = 10, output_len = 5 }

-- 1. on_response returns "stop" after three answers (one request in flight at a time).
local seen = 0
local res = mb.run{ target = t, requests = reqs, max_concurrency = 1, progress = false,
  on_response = function(r) seen = seen + 1; if seen == 3 then return "stop" end end }
local s = res:summary()
check(s.completed >= 3 and s.completed < 200, "stopped early: " .. s.completed)
check(res.stopped == 'on_response returned "stop"' and s.stopped == res.stopped, tostring(res.stopped))
check(not res.partial and s.partial == false, "a stop asked for is not partial")

-- 2. mb.stop with a reason; the next run starts as usual.
local res2 = mb.run{ target = t, requests = reqs, max_concurrency = 2, progress = false,
  on_response = function(r) if r.index >= 4 then mb.stop("enough data") end end }
check(res2.stopped == "enough data" and res2:summary().completed < 200, tostring(res2.stopped))
check(mb.run{ target = t, requests = reqs, num_requests = 5, progress = false }:summary().completed == 5,
  "a later run is not refused")

-- 3. An error in on_response stops the run; pcall gets the result; save keeps it.
local saved = dir .. "/after_error.json"
local ok, err = pcall(mb.run, { target = t, requests = reqs, max_concurrency = 1, progress = false, save = saved,
  on_response = function(r) if r.index == 2 then error("bad record") end end })
check(not ok and tostring(err):find("stop.lua:%d+: bad record"), "the script's file:line: " .. tostring(err))
check(err.result and err.result:summary().completed >= 3 and err.result:summary().completed < 200,
  "the result rides with the error")
check(err.result.stopped:find("error in on_response", 1, true), tostring(err.result.stopped))
check(mb.exists(saved), "the result was saved")

-- 4. mb.users: mb.stop from a scenario.
local ures = mb.users{ target = t, count = 4, iterations = 50, progress = false,
  scenario = function(u)
    local r = u:complete{ prompt = "a b c", max_tokens = 3 }
    if u.id == 1 and u.iteration == 3 then mb.stop("users: seen enough") end
  end }
check(ures.stopped == "users: seen enough" and ures:summary().completed < 200, tostring(ures.stopped))

-- 5. mb.stop outside a run says so.
local ok5, e5 = pcall(mb.stop, "x")
check(not ok5 and tostring(e5):find("no run in progress", 1, true), tostring(e5))
print("STOP OK")
