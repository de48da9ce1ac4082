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

-- the server's own count of each prompt (target:verify_prompt_lengths, --verify-prompt-lengths): a
-- simulator counting words against prompts built with Qwen3; the truth is the words tokenizer's count.
local words = mb.tokenizer("words")
local sim = mb.sim{ tokenizer = "words" }
local wt = mb.target{ base_url = sim.base_url, tokenizer = tok }
local texts = { "Hello, moonbench! How long is this?", "one two three", "你好，世界。月亮很亮。" }
local mixed = { texts[1], texts[2], texts[3], { messages = { { role = "user", content = "hi" } } } }
local c = wt:verify_prompt_lengths(mixed)
check(c.dialect == "vllm/sglang" and c.url == sim.base_url .. "/tokenize", "dialect and url: " .. tostring(c.url))
check(c.checked == 3 and c.skipped == 1, string.format("checked %d, skipped %d", c.checked, c.skipped))
local want_equal, want = 0, {}
for i = 1, 3 do
  local d = words:count(texts[i]) - tok:count(texts[i])
  if d == 0 then want_equal = want_equal + 1 else want[tostring(d)] = (want[tostring(d)] or 0) + 1 end
end
check(want_equal == 1, "the texts: one counted alike, two not")
check(c.equal == want_equal, string.format("%d equal, words say %d", c.equal, want_equal))
for d, n in pairs(want) do check(c.differences[d] == n, "difference " .. d) end
check(#c.examples == 3 - c.equal, "mismatch examples")
local e = c.examples[1]
check(e.server == words:count(texts[e.index + 1]) and e.ours == tok:count(texts[e.index + 1]), "example counts")
local vr = mb.dataset.random{ tokenizer = tok, n = 9, input_len = 30, output_len = 4, seed = 3 }
local all = wt:verify_prompt_lengths(vr, 4)
check(all.checked == 4, "limit: " .. all.checked)
local same = mb.target{ base_url = sim.base_url, tokenizer = words }
local wr = mb.dataset.random{ tokenizer = words, n = 5, input_len = 20, output_len = 4, seed = 3 }
local s2 = same:verify_prompt_lengths(wr)
check(s2.checked == 5 and s2.equal == 5 and next(s2.differences) == nil, "same tokenizer: all equal")
print("DATASETS OK")
