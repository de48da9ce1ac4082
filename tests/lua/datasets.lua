-- Datasets and tokenizers from Lua. Prints "DATASETS OK" when every check passes.
local mb = require "moonbench"
local function check(c, what) if not c then error("check failed: " .. what, 2) end end
local root = mb.env("MOONBENCH_ROOT")
local tok = mb.tokenizer(root .. "/tests/fixtures/qwen3")

-- the chat template
local s = tok:apply_chat_template({ { role = "user", content = "hi" } }, { add_generation_prompt = true })
check(s == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "chat template: " .. s)
local s2 = tok:apply_chat_template({ { role = "user", content = "hi" } }, { add_generation_prompt = true, enable_thinking = false })
check(s2:find("<think>", 1, true) ~= nil, "template variables pass through")
check(tok:has_chat_template() and not mb.tokenizer("words"):has_chat_template(), "has_chat_template")

-- exact random prompts with the real tokenizer, and templated prompts
local reqs = mb.dataset.random{ tokenizer = tok, n = 20, input_len = 64, output_len = 4, seed = 9 }
for i = 1, #reqs do check(tok:count(reqs[i].prompt) == 64, "exact length of prompt " .. i) end
local templated = reqs:apply_chat_template(tok)
check(templated[1].prompt:sub(1, 22) == "<|im_start|>user\n" .. reqs[1].prompt:sub(1, 5), "templated prompt")
check(templated[1].prompt_tokens == tok:count(templated[1].prompt), "templated count")
local ids = reqs:to_token_ids(tok)
check(#ids[1].prompt_token_ids == 64, "token ids")

-- a trace with timestamps, replayed with mb.arrival.trace
local trace = mb.dataset.mooncake{ path = root .. "/tests/fixtures/mooncake/synthetic_trace.jsonl.gz", tokenizer = tok, n = 12 }
local ts = trace:timestamps()
check(#ts == 12 and ts[1] == 0, "timestamps")
check(trace[1].prompt_tokens == 40160, "first request's length from the trace")
local target = mb.target{ sim = { ttft_ms = 1, itl_ms = 0.2 }, body = { ignore_eos = true }, tokenizer = tok }
local res = mb.run{ target = target, requests = trace, arrival = mb.arrival.trace{ timestamps = trace, scale = 0.01 },
  max_concurrency = 12, progress = false }
local sm = res:summary()
check(sm.completed == 12, "trace replay completed")
local recs = res:records()
for i, r in ipairs(recs) do
  check(math.abs(r.start_time - ts[i] * 0.01) < 0.03, "request " .. i .. " sent at its scaled timestamp")
end
local res2 = mb.run{ target = target, requests = trace, arrival = "trace", num_requests = 2, progress = false }
check(res2:summary().completed == 2, "arrival = \"trace\"")

-- the other datasets
check(#mb.dataset.sonnet{ n = 3, input_len = 300, prefix_len = 100, output_len = 5, tokenizer = tok } == 3, "sonnet")
check(#mb.dataset.prefix_repetition{ n = 8, num_prefixes = 2, prefix_len = 10, suffix_len = 5, tokenizer = tok } == 8, "prefix_repetition")
local ok, err = pcall(mb.dataset.custom, { path = "/nonexistent.jsonl" })
check(not ok and tostring(err):find("cannot read /nonexistent.jsonl", 1, true), "custom error: " .. tostring(err))
local ok2, err2 = pcall(mb.arrival.trace, { timestamps = reqs })
check(not ok2 and tostring(err2):find("no timestamps", 1, true), "trace arrival needs timestamps")
print("DATASETS OK")
