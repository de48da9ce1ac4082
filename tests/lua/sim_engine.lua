-- The simulator's step engine (mb.sim{ engine = "step" }), judged by what it recorded:
-- its step log (t:sim_steps(), sim:steps()) and the send times of every chunk
-- (t:sim_truth(), sim:truth()).
local mb = require "moonbench"
local function check(c, msg) if not c then error(msg, 2) end end

local client_ttft = 0 -- every TTFT the client measured so far (s)
local function run(t, reqs, c)
  local res = mb.run{ target = t, requests = reqs, max_concurrency = c, progress = false }
  for _, r in ipairs(res:records()) do
    check(r.success, "request failed: " .. tostring(r.error))
    client_ttft = client_ttft + r.ttft
  end
  return res
end

-- 1. More concurrency slows every token: median TPOT rises strictly from 1 to 8 to 32
-- streams, and output throughput grows less than the concurrency does.
local t = mb.target{ sim = { preset = "llama3-8b-h100" } }
local s = {}
for _, c in ipairs{ 1, 8, 32 } do
  local reqs = mb.dataset.random{ n = 4 * c, input_len = 512, output_len = 64, seed = c }
  s[c] = run(t, reqs, c):summary()
end
check(s[1].median_tpot_ms < s[8].median_tpot_ms and s[8].median_tpot_ms < s[32].median_tpot_ms,
  string.format("median TPOT at 1, 8, 32 streams: %.2f, %.2f, %.2f ms", s[1].median_tpot_ms,
    s[8].median_tpot_ms, s[32].median_tpot_ms))
check(s[32].output_throughput < 32 * s[1].output_throughput and s[8].output_throughput < 8 * s[1].output_throughput,
  string.format("output throughput at 1, 8, 32 streams: %.0f, %.0f, %.0f tok/s", s[1].output_throughput,
    s[8].output_throughput, s[32].output_throughput))

-- 2. The step record reconciles with every request: each chunk's token came from a step
-- the engine ran, the chunk was written after that step ended, and the steps handed out
-- exactly the tokens the client counted.
local steps = t:sim_steps()
local ends, out = {}, 0
for _, st in ipairs(steps) do
  check(st["end"] >= st.start, "a step ends after it starts")
  check(st.seqs <= 1024 and st.prefill_tokens + st.decode_seqs <= 8192, "a step within the preset's limits")
  ends[st["end"]] = true
  out = out + st.tokens_out
end
check(out == (4 + 32 + 128) * 64, string.format("the steps handed out %d tokens, the runs asked for %d", out,
  (4 + 32 + 128) * 64))
local reqs = mb.dataset.random{ n = 16, input_len = 200, output_len = 20, seed = 99 }
local res = run(t, reqs, 8)
for _, r in ipairs(res:records()) do
  local tr = t:sim_truth(r.request_id)
  check(tr and tr.step_ends and #tr.step_ends == #tr.chunk_times, "the truth names each chunk's step")
  check(#r.chunk_times == #tr.chunk_times, string.format("%d chunks measured, %d sent", #r.chunk_times, #tr.chunk_times))
  for i, e in ipairs(tr.step_ends) do
    check(ends[e] == nil, "steps of the earlier runs are not this run's")
    local written = tr.received + tr.chunk_times[i]
    check(written >= e - 1e-6, string.format("chunk %d written %.6f s before its step ended", i, e - written))
  end
end
local later = t:sim_steps()
local ends2 = {}
for i = #steps + 1, #later do ends2[later[i]["end"]] = true end
for _, r in ipairs(res:records()) do
  for _, e in ipairs(t:sim_truth(r.request_id).step_ends) do
    check(ends2[e], "every chunk's step is in the step log")
  end
end

-- The engine's /metrics histograms count every request and token the client saw, and
-- the server's TTFT (from receiving the request) is within the client's (from sending it).
local status, page = mb.http_get(t.base_url .. "/metrics", 5)
check(status == 200, "/metrics: " .. tostring(status))
local function metric(name)
  local v = page:match("\n" .. name:gsub("[:%_]", "%%%0") .. "{[^}]*} ([%d%.e%-+]+)")
  check(v, "no " .. name .. " on /metrics")
  return tonumber(v)
end
local all_reqs = 4 + 32 + 128 + 16
check(metric("vllm:time_to_first_token_seconds_count") == all_reqs, "TTFT count " .. metric("vllm:time_to_first_token_seconds_count"))
check(metric("vllm:e2e_request_latency_seconds_count") == all_reqs, "E2E count")
check(metric("vllm:inter_token_latency_seconds_count") == (4 + 32 + 128) * 63 + 16 * 19, "ITL count")
local server_ttft = metric("vllm:time_to_first_token_seconds_sum")
check(server_ttft <= client_ttft and server_ttft > 0.8 * client_ttft,
  string.format("the server's TTFTs add up to %.4f s, the client's to %.4f s", server_ttft, client_ttft))
check(metric("vllm:request_queue_time_seconds_count") == all_reqs, "queue-time histogram")

-- 3. A KV cache too small for the batch preempts: the server's /metrics counts the
-- preemptions, the step log shows them, and the client sees the stalls in ITL.
local small = mb.target{ sim = { preset = "llama3-8b-h100", kv_cache_tokens = 4096, max_model_len = 1024 } }
local r3 = mb.run{ target = small, requests = mb.dataset.random{ n = 32, input_len = 256, output_len = 128, seed = 5 },
  max_concurrency = 32, progress = false, server_metrics = 0.1 }
local preempted = 0
for _, st in ipairs(small:sim_steps()) do preempted = preempted + st.preempted end
check(preempted > 0, "32 requests of 384 tokens in a 4096-token cache are preempted")
local sm = r3:server_metrics()
check(sm and sm.summary.preemptions and sm.summary.preemptions > 0,
  "/metrics counts the preemptions: " .. mb.json.encode(sm and sm.summary or {}))
local max_gap, gaps = 0, {}
for _, r in ipairs(r3:records()) do
  check(r.success, "a preempted request still finishes: " .. tostring(r.error))
  for i = 2, #r.chunk_times do
    local g = r.chunk_times[i] - r.chunk_times[i - 1]
    gaps[#gaps + 1] = g
    if g > max_gap then max_gap = g end
  end
end
table.sort(gaps)
local med = gaps[(#gaps + 1) // 2]
check(max_gap > 5 * med, string.format("the longest ITL %.1f ms is a stall (median %.1f ms)", max_gap * 1e3, med * 1e3))

-- 4. Prefix caching: a prefix_repetition workload's hit rate is within 5 points of the
-- share of its prompt blocks that are shared, and its TTFT is well below a random
-- workload of the same lengths.
local pc = mb.target{ sim = { preset = "llama3-8b-h100" } }
local n, plen, slen = 32, 1024, 64
local pr = run(pc, mb.dataset.prefix_repetition{ n = n, num_prefixes = 2, prefix_len = plen, suffix_len = slen,
  output_len = 16, seed = 3 }, 2)
local cached = 0
for _, st in ipairs(pc:sim_steps()) do cached = cached + st.cached_tokens end
local rate = cached / (n * (plen + slen))
-- Every request but the first of each prefix (and one admitted beside it) finds the
-- prefix's full blocks.
local expected = (n - 2) * plen / (n * (plen + slen))
check(math.abs(rate - expected) <= 0.05, string.format("prefix hit rate %.3f, shared blocks %.3f", rate, expected))
local rnd = run(mb.target{ sim = { preset = "llama3-8b-h100" } },
  mb.dataset.random{ n = n, input_len = plen + slen, output_len = 16, seed = 3 }, 2)
local ttft_p, ttft_r = pr:summary().median_ttft_ms, rnd:summary().median_ttft_ms
check(ttft_p < 0.6 * ttft_r, string.format("median TTFT %.1f ms with a shared prefix, %.1f ms without", ttft_p, ttft_r))

-- 5. Replicas: two engines behind a router carry more than one at high concurrency, and
-- the prefix-aware router keeps each prefix on one engine, so it hits the cache more
-- than round-robin does.
local function load_run(opts, reqs, c)
  local tt = mb.target{ sim = opts }
  local r = run(tt, reqs, c)
  local cached, engines = 0, {}
  for _, st in ipairs(tt:sim_steps()) do
    cached = cached + st.cached_tokens
    engines[st.engine] = true
  end
  return r:summary(), cached, engines, tt
end
local heavy = mb.dataset.random{ n = 128, input_len = 256, output_len = 32, seed = 11 }
local one = load_run({ preset = "qwen3-0.6b-a10" }, heavy, 64)
local two, _, used, t2 = load_run({ preset = "qwen3-0.6b-a10", data_parallel = 2 }, heavy, 64)
check(used[0] and used[1] and t2.sim_engine.data_parallel == 2, "both engines ran steps")
check(two.output_throughput > 1.3 * one.output_throughput,
  string.format("output throughput with 2 engines %.0f tok/s, with 1 %.0f tok/s", two.output_throughput,
    one.output_throughput))
local shared = mb.dataset.prefix_repetition{ n = 64, num_prefixes = 4, prefix_len = 512, suffix_len = 32,
  output_len = 8, seed = 4 }
local _, rr_cached = load_run({ preset = "qwen3-0.6b-a10", data_parallel = 4, router = "round-robin" }, shared, 4)
local _, pa_cached = load_run({ preset = "qwen3-0.6b-a10", data_parallel = 4, router = "prefix-aware" }, shared, 4)
check(pa_cached > rr_cached, string.format("prefix-aware cached %d tokens, round-robin %d", pa_cached, rr_cached))

-- Faults, multi-token chunks and reasoning tokens work on the step engine as on the fixed one.
local ft = mb.target{ backend = "openai-chat", timeout = 3,
  sim = { preset = "qwen3-0.6b-a10", tokens_per_chunk = 4, reasoning_tokens = 3, faults = "reset=0.2,http500=0.2" } }
local fr = mb.run{ target = ft, requests = mb.dataset.random{ n = 30, input_len = 64, output_len = 16, seed = 2 },
  max_concurrency = 6, progress = false }
local ok_n, failed_n = 0, 0
for _, r in ipairs(fr:records()) do
  if r.success then
    ok_n = ok_n + 1
    check(#r.chunk_times == 4 and r.output_tokens == 16 and r.reasoning_tokens == 3,
      string.format("4 chunks of 4 tokens, 3 reasoning: %d chunks, %d tokens, %d reasoning", #r.chunk_times,
        r.output_tokens, r.reasoning_tokens))
    check(#ft:sim_truth(r.request_id).step_ends == 4, "one step per chunk in the truth")
  else
    failed_n = failed_n + 1
  end
end
check(ok_n > 0 and failed_n > 0 and ok_n + failed_n == 30, string.format("%d ok, %d failed", ok_n, failed_n))

-- mb.sim{...} started by hand: sim:steps() and sim:truth() are the same record a target
-- on it sees, and a target given its base_url is linked to it.
local own = mb.sim{ preset = "qwen3-0.6b-a10", max_num_seqs = 4 }
check(own.engine.preset == "qwen3-0.6b-a10" and own.engine.max_num_seqs == 4, "sim.engine")
check(tostring(own):find(own.base_url, 1, true), "tostring names the URL")
local ot = mb.target{ base_url = own.base_url }
local orun = run(ot, mb.dataset.random{ n = 6, input_len = 32, output_len = 8, seed = 5 }, 6)
local osteps = own:steps()
check(#osteps > 0 and #osteps == #ot:sim_steps(), "sim:steps() and t:sim_steps() are one record")
local most = 0
for _, st in ipairs(osteps) do most = math.max(most, st.seqs) end
check(most == 4, "max_num_seqs = 4 holds 6 streams to 4 at a time: " .. most)
for _, r in ipairs(orun:records()) do
  local a, b = own:truth(r.request_id), ot:sim_truth(r.request_id)
  check(a and b and a.received == b.received and #a.chunk_times == #r.chunk_times, "sim:truth()")
end
check(own:truth("no-such-id") == nil, "an unknown id has no truth")
local fixed = mb.sim{ ttft_ms = 1 }
local okf, errf = pcall(fixed.steps, fixed)
check(not okf and tostring(errf):find("sim:steps: ", 1, true) and tostring(errf):find("fixed engine", 1, true),
  "sim:steps on the fixed engine: " .. tostring(errf))
check(fixed.engine == nil, "the fixed engine has no engine table")

-- The prefix cache outlives a run: the same prompts sent again are served from it, and
-- reset_prefix_cache = true (bench --reset-prefix-cache) drops it first, as vLLM's
-- /reset_prefix_cache does.
local rt = mb.target{ sim = { preset = "qwen3-0.6b-a10" } }
local same = mb.dataset.random{ n = 8, input_len = 256, output_len = 4, seed = 21 }
local function cached_by(opts)
  local before = #rt:sim_steps()
  local o = { target = rt, requests = same, max_concurrency = 1, progress = false }
  for k, v in pairs(opts) do o[k] = v end
  mb.run(o)
  local c, steps = 0, rt:sim_steps()
  for i = before + 1, #steps do c = c + steps[i].cached_tokens end
  return c
end
local fresh = cached_by{}
local again = cached_by{}
local reset = cached_by{ reset_prefix_cache = true }
check(again >= fresh + 8 * (256 - 16), string.format("sent again: %d cached tokens, first time %d", again, fresh))
check(reset == fresh, string.format("after a reset: %d cached tokens, first time %d", reset, fresh))
check(rt:reset_prefix_cache() == "/reset_prefix_cache", "t:reset_prefix_cache()")
local bare = mb.target{ sim = { preset = "qwen3-0.6b-a10", metrics = false } }
local okr, errr = pcall(bare.reset_prefix_cache, bare)
check(not okr and tostring(errr):find("VLLM_SERVER_DEV_MODE=1", 1, true)
  and tostring(errr):find("POST /reset_prefix_cache answered HTTP 404", 1, true), "no endpoint: " .. tostring(errr))
local okr2, errr2 = pcall(mb.run, { target = bare, requests = same, reset_prefix_cache = true, progress = false })
check(not okr2 and tostring(errr2):find("--reset-prefix-cache", 1, true), "mb.run with no endpoint: " .. tostring(errr2))

-- 6. Impossible configurations stop at start, naming the option.
local function refuses(opts, needle)
  local ok, err = pcall(mb.target, { sim = opts })
  check(not ok and tostring(err):find(needle, 1, true), "expected '" .. needle .. "', got " .. tostring(err))
end
refuses({ block_size = 0 }, "block_size")
refuses({ preset = "llama3-8b-h10" }, "did you mean 'llama3-8b-h100'")
refuses({ kv_cache_tokens = 1000, max_model_len = 4096 }, "kv_cache_tokens")
refuses({ enable_chunked_prefill = false, max_num_batched_tokens = 512, max_model_len = 4096 }, "max_num_batched_tokens")
refuses({ engine = "fixed", max_num_seqs = 4 }, "max_num_seqs (--max-num-seqs) is an option of the step engine")
refuses({ engine = "stepp" }, "did you mean 'step'")
refuses({ data_parallel = 0 }, "data_parallel")
refuses({ preset = "qwen3-8b-l40s", ttft_ms = 5 }, "ttft_ms (--ttft-ms) is an option of the fixed engine")
refuses({ engine = "step", max_running = 4 }, "max_running (--max-running) is an option of the fixed engine")
-- The step engine is the default; a fixed-engine option chooses the fixed engine.
check(mb.target{}.sim_engine.preset == "llama3-8b-h100", "the default simulator runs the step engine")
check(mb.target{ sim = { ttft_ms = 5 } }.sim_engine == nil, "ttft_ms chooses the fixed engine")
refuses({ preset = "qwen3-8b-l40s", preset_file = "x.json" }, "not both")
refuses({ preset_file = "/nonexistent/my-gpu.json" }, "/nonexistent/my-gpu.json")
refuses({ router = "round-robbin" }, "did you mean 'round-robin'")

print(string.format("TPOT %.2f/%.2f/%.2f ms; preemptions %d; prefix hit rate %.3f; TTFT %.1f vs %.1f ms; "
  .. "1 vs 2 engines %.0f vs %.0f tok/s; cached round-robin %d, prefix-aware %d",
  s[1].median_tpot_ms, s[8].median_tpot_ms, s[32].median_tpot_ms, preempted, rate, ttft_p, ttft_r,
  one.output_throughput, two.output_throughput, rr_cached, pa_cached))
print("ENGINE OK")
