-- End-to-end tour of the mb.* API against the built-in simulator.
-- Every check raises an error (non-zero exit) if it fails; "TOUR OK" is printed at the end.
local mb = require "moonbench"

local function check(cond, what) if not cond then error("check failed: " .. what, 2) end end

-- utilities
check(mb.env("MOONBENCH_TOUR_VAR", "dflt") == "set-by-test", "mb.env reads the environment")
check(mb.env("MOONBENCH_NO_SUCH_VAR", "dflt") == "dflt", "mb.env default")
local t0 = mb.now()
mb.sleep(0.05)
check(mb.now() - t0 >= 0.045, "mb.sleep waits")
local j = mb.json.decode(mb.json.encode({ a = 1, b = { 1, 2, 3 }, c = "x" }))
check(j.a == 1 and #j.b == 3 and j.c == "x", "json round trip")
check(#mb.date() == 15, "mb.date format")
check(arg[1] == "first" and arg[2] == "--second", "script arguments in arg")

-- a target on a simulator with known timing, and two kinds of request sets
local target = mb.target{ backend = "openai-chat", sim = { ttft_ms = 20, itl_ms = 4 }, body = { ignore_eos = true } }
check(target.is_sim and target.model == "moonbench-sim", "target on the simulator")
local tok = mb.tokenizer("words")
local set = mb.dataset.random{ tokenizer = tok, n = 12, input_len = 10, output_len = 8, seed = 1 }
check(#set == 12 and set[1].prompt_tokens == 10 and set[1].max_tokens == 8, "native request set indexes like an array")
check(tok:count(set[3].prompt) == 10, "exact prompt length")

-- open loop at a Poisson rate, per-request callback, SLO
local seen = 0
local res = mb.run{
  target = target, requests = set,
  arrival = mb.arrival.poisson{ rate = 200, burstiness = 1.0, seed = 3 },
  max_concurrency = 8, warmup = 2,
  slo = { ttft_ms = 1000 },
  percentiles = { 50, 90, 99 },
  on_response = function(r) seen = seen + 1; check(r.success, "request succeeded: " .. tostring(r.error)) end,
  progress = false,
}
check(seen == 12, "on_response once per measured request, got " .. seen)
local s = res:summary()
check(s.completed == 12 and s.failed == 0, "12 completed")
check(s.total_output_tokens == 12 * 8, "output tokens")
check(s.mean_ttft_ms >= 20 and s.mean_ttft_ms < 30, "TTFT near 20 ms: " .. s.mean_ttft_ms)
check(math.abs(s.mean_itl_ms - 4) < 1, "ITL near 4 ms: " .. s.mean_itl_ms)
check(s.p90_ttft_ms ~= nil and s.p99_e2el_ms ~= nil, "requested percentiles")
check(s.request_goodput > 0 and s.goodput_ratio == 1.0, "goodput")
check(s.num_warmups == 2, "warm-ups recorded")
-- The script thread sleeps while Rust runs the requests (it once spun on a closed channel).
check(s.client_health.script_cpu_share < 0.5, "Lua thread idle during the run: " .. s.client_health.script_cpu_share)
local recs = res:records()
check(#recs == 12 and recs[1].chunk_times ~= nil and #recs[1].itls == 7, "records")
check(#res:records{ warmup = true } == 14, "warm-up records kept")
local custom = res:summary{ percentiles = { 75 } }
check(custom.p75_ttft_ms ~= nil and custom.p99_ttft_ms == nil, "summary with other percentiles")

-- requests as Lua tables, a function as the schedule, constant rate, and saving
local reqs = {}
for i = 1, 6 do reqs[i] = { prompt = "the moon " .. i, max_tokens = 3 } end
reqs[6] = { messages = { { role = "user", content = "hi there" } }, max_tokens = 3, body = { temperature = 0.5 } }
local res2 = mb.run{ target = target, requests = reqs, arrival = function(i) return (i - 1) * 0.01 end, progress = false }
check(res2:summary().completed == 6, "table requests with a schedule function")
local dir = mb.env("MOONBENCH_TOUR_DIR")
local path = res2:save(nil, { dir = dir, detailed = true, metadata = { run = "tour" } })
local f = assert(io.open(path)); local saved = mb.json.decode(f:read("a")); f:close()
check(saved.run == "tour" and saved.completed == 6 and #saved.ttfts == 6, "saved result")
local res3 = mb.run{ target = target, requests = reqs, arrival = mb.arrival.constant{ rate = 500 }, num_requests = 9, progress = false }
check(res3:summary().completed == 9, "num_requests cycles through the requests")

-- a completions target and the vLLM-style printout through the stdlib
local t2 = mb.target{ backend = "openai", sim = { ttft_ms = 1, itl_ms = 1 } }
local res4 = mb.run{ target = t2, requests = { { prompt = "a b c", max_tokens = 2 } }, progress = false }
res4:print{ lang = "en" }

-- multimodal chat: a local image as a data URL; a broken data URL is a failed record
local img = dir .. "/pixel.png"
local f2 = assert(io.open(img, "wb")); f2:write("\137PNG\r\n\26\n fake"); f2:close()
local url = mb.image_data_url(img)
check(url:sub(1, 22) == "data:image/png;base64,", "data URL: " .. url:sub(1, 30))
local ok_img, err_img = pcall(mb.image_data_url, dir .. "/notes.txt")
check(not ok_img and tostring(err_img):find("unknown image type", 1, true), "bad image type: " .. tostring(err_img))
local chat = mb.target{ backend = "openai-chat", sim = { ttft_ms = 1, itl_ms = 1, reasoning_tokens = 2 } }
local function vision(u)
  return { messages = { { role = "user", content = {
    { type = "text", text = "what is this" },
    { type = "image_url", image_url = { url = u } } } } }, max_tokens = 4 }
end
local res5 = mb.run{ target = chat, requests = { vision(url), vision("data:image/png;base64,%%%") }, progress = false }
local r5 = res5:records()
check(r5[1].success and r5[1].reasoning_tokens == 2, "image request with reasoning: " .. tostring(r5[1].error))
check(not r5[2].success and r5[2].status == 400 and r5[2].error:find("base64", 1, true), "bad image: " .. tostring(r5[2].error))
check(res5:summary().total_reasoning_tokens == 2, "reasoning tokens in the summary")

-- the server's own metrics (the simulator serves vLLM's names)
local sm = res5:server_metrics()
check(sm and sm.source == "vllm" and sm.summary.samples >= 2 and #sm.series.t == sm.summary.samples,
  "server metrics: " .. mb.json.encode(sm or {}))
local res6 = mb.run{ target = chat, requests = { vision(url) }, server_metrics = false, progress = false }
check(res6:server_metrics() == nil, "server_metrics = false skips them")
local ok_sm, err_sm = pcall(mb.run, { target = chat, requests = { vision(url) }, server_metrics = "often" })
check(not ok_sm and tostring(err_sm):find("option 'server_metrics': must be seconds", 1, true), tostring(err_sm))

-- every native backend from Lua
for _, b in ipairs{ "sglang", "tgi", "tensorrt-llm", "llama.cpp", "deepspeed-mii", "openai-embeddings",
    "openai-responses" } do
  local tb = mb.target{ backend = b, body = { ignore_eos = true }, sim = { ttft_ms = 1, itl_ms = 1 } }
  local rb = mb.run{ target = tb, requests = { { prompt = "a b c", max_tokens = 3 } }, progress = false }
  local sb = rb:summary()
  check(sb.completed == 1, b .. ": " .. tostring(rb:records()[1].error))
  if b == "openai-embeddings" then
    -- A pooling result, as vLLM writes it: input sequences, no output tokens.
    check(sb.total_output_tokens == nil and sb.total_input_sequences == 1, b .. ": pooling keys")
  else
    check(sb.total_output_tokens == 3, b .. " output tokens " .. tostring(sb.total_output_tokens))
  end
  check(tb.stream == (b ~= "deepspeed-mii" and b ~= "openai-embeddings"), b .. " streams by default")
end
print("TOUR OK")
