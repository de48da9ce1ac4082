-- The Responses API and the pooling APIs against the built-in simulator, judged by what
-- the simulator recorded it sent (t:sim_truth), not by its settings.
local mb = require "moonbench"
local function check(c, msg) if not c then error(msg, 2) end end

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2] or 0
end

-- 1. openai-responses: every event's arrival against the event the simulator wrote.
local t = mb.target{ backend = "openai-responses", sim = { ttft_ms = 20, itl_ms = 4, reasoning_tokens = 3 } }
local reqs = {}
for i = 1, 8 do reqs[i] = { prompt = "hello moon " .. i, max_tokens = 12, ignore_eos = true } end
local res = mb.run{ target = t, requests = reqs }
local lags, gaps = {}, {}
for _, r in ipairs(res:records()) do
  check(r.success, "responses request failed: " .. tostring(r.error))
  local tr = t:sim_truth(r.request_id)
  check(tr ~= nil, "the simulator kept the truth of " .. r.request_id)
  check(#r.chunk_times == #tr.chunk_times,
    string.format("%d chunks measured, the simulator sent %d", #r.chunk_times, #tr.chunk_times))
  local sent = 0
  for _, k in ipairs(tr.chunk_tokens) do sent = sent + k end
  check(r.output_tokens == sent, string.format("%d output tokens, the simulator sent %d", r.output_tokens, sent))
  check(r.reasoning_tokens == 3, "reasoning tokens: " .. tostring(r.reasoning_tokens))
  for i, c in ipairs(r.chunk_times) do
    -- Sending starts before the server receives: a client time is never earlier than the server's.
    check(c >= tr.chunk_times[i] - 0.0005, string.format("chunk %d at %.4f s, written at %.4f s", i, c,
      tr.chunk_times[i]))
    lags[#lags + 1] = c - tr.chunk_times[i]
    if i > 1 then
      gaps[#gaps + 1] = math.abs((c - r.chunk_times[i - 1]) - (tr.chunk_times[i] - tr.chunk_times[i - 1]))
    end
  end
end
check(median(gaps) < 0.002, string.format("median ITL error %.4f s", median(gaps)))
check(median(lags) < 0.005, string.format("median arrival lag %.4f s", median(lags)))
local s = res:summary()
check(s.total_output_tokens == 8 * 12, "total output " .. tostring(s.total_output_tokens))
check(s.total_reasoning_tokens == 8 * 3, "total reasoning " .. tostring(s.total_reasoning_tokens))

-- 2. vllm-rerank: the end-to-end latency contains the time the simulator took to answer;
-- the summary counts documents as input sequences.
local rt = mb.target{ backend = "vllm-rerank", sim = { ttft_ms = 15 } }
local rr = mb.dataset.random_rerank{ n = 12, input_len = 40, batch_size = 4, seed = 1 }
check(#rr == 3, "12 documents in batches of 4 make 3 requests, got " .. #rr)
res = mb.run{ target = rt, requests = rr, metrics = { "e2el" } }
for _, r in ipairs(res:records()) do
  check(r.success, "rerank request failed: " .. tostring(r.error))
  local tr = t.sim_truth(rt, r.request_id)
  check(r.e2el >= tr.ttft, string.format("E2EL %.4f s below the server's %.4f s", r.e2el, tr.ttft))
end
s = res:summary()
check(s.total_input_sequences == 12, "input sequences " .. tostring(s.total_input_sequences))
check(s.mean_e2el_ms ~= nil and s.mean_ttft_ms == nil, "a pooling summary has E2EL and no TTFT")
check(s.total_output_tokens == nil, "a pooling summary has no output tokens")

-- 3. openai-embeddings with batches: the server counted the same input tokens we did.
local et = mb.target{ backend = "openai-embeddings", sim = { ttft_ms = 5 } }
local batch = mb.dataset.random{ n = 10, input_len = 16, batch_size = 4 }
res = mb.run{ target = et, requests = batch, metrics = { "e2el" } }
s = res:summary()
check(s.completed == 3 and s.total_input_sequences == 10,
  string.format("%d requests, %d sequences", s.completed, s.total_input_sequences))
check(s.total_server_input_tokens == s.total_input_tokens,
  string.format("server counted %s input tokens, we %s", tostring(s.total_server_input_tokens),
    tostring(s.total_input_tokens)))

-- 4. A typo in a request table is named, not ignored.
local ok, err = pcall(mb.run, { target = et, requests = { { txets = { "a", "b" } } } })
check(not ok and tostring(err):find("txets", 1, true) and tostring(err):find("texts", 1, true),
  "the typo is named with its fix: " .. tostring(err))

print("POOLING OK")
