-- Every option table of the API rejects a typo before anything is sent, naming the
-- function, the key and the nearest valid key; a wrong type names the option; an
-- mb.* name that does not exist says so. The README's random-dataset example gets
-- exactly the output tokens it asks for.
local mb = require "moonbench"
local function check(cond, what) if not cond then error("check failed: " .. what, 2) end end

local t = mb.target{ sim = { ttft_ms = 1, itl_ms = 1 } }
local reqs = mb.dataset.random{ n = 20, input_len = 100, output_len = 50 }
local res = mb.run{ target = t, requests = reqs, progress = false }
check(res:summary().total_output_tokens == 1000, "random dataset lengths as asked: " .. res:summary().total_output_tokens)
check(res:records()[1].output_tokens == 50, "one record: " .. res:records()[1].output_tokens)

local cases = {
  { function() res:print{ lnag = "zh" } end, "res:print: unknown option 'lnag' (did you mean 'lang'?)" },
  { function() res:print{ lang = "fr" } end, "res:print: option 'lang': unknown variant `fr`" },
  { function() mb.rate_sweep{ target = t, requests = reqs, save_dri = "x" } end, "mb.rate_sweep: unknown option 'save_dri' (did you mean 'save_dir'?)" },
  { function() mb.slo_search{ target = t, requests = reqs, slo = { ttft = 1 } } end, "mb.slo_search: unknown option 'slo.ttft' (did you mean 'ttft_ms'?)" },
  { function() mb.tokenizer("words"):apply_chat_template({}, { add_generaton_prompt = true }) end, "(did you mean 'add_generation_prompt'?)" },
  { function() mb.run{ target = t, requests = reqs, max_concurency = 2 } end, "mb.run: unknown option 'max_concurency' (did you mean 'max_concurrency'?)" },
  { function() mb.run{ requests = reqs } end, "mb.run: option 'target' is required (make one with mb.target{...})" },
  { function() mb.run{ target = t, requests = reqs, warmup = "two" } end, "mb.run: option 'warmup': invalid type: string \"two\"" },
  { function() mb.users{ target = t, count = 1, scenario = function() end, itrations = 2 } end, "mb.users: unknown option 'itrations' (did you mean 'iterations'?)" },
  { function() mb.target{ bse_url = "x" } end, "mb.target: unknown option 'bse_url' (did you mean 'base_url'?)" },
  { function() mb.target{ sim = { ttft = 3 } } end, "mb.target: unknown option 'sim.ttft' (did you mean 'ttft_ms'?)" },
  { function() mb.sim{ itl = 3 } end, "mb.sim: unknown option 'itl' (did you mean 'itl_ms'?)" },
  { function() mb.arrival.steps{ { rate = 1, duraton = 2 } } end, "mb.arrival.steps: step 1: unknown option 'duraton' (did you mean 'duration'?)" },
  { function() mb.arrival.ramp{ from = 1, to = 2, duraton = 2 } end, "mb.arrival.ramp: unknown option 'duraton' (did you mean 'duration'?)" },
  { function() mb.arrival.poisson{ rate = "fast" } end, "mb.arrival.poisson: option 'rate': invalid type: string \"fast\"" },
  { function() mb.arrival.trace{ timestamps = reqs, scael = 2 } end, "(did you mean 'scale'?)" },
  { function() mb.run{ target = t, requests = { { prompt = "x", max_token = 3 } } } end, "request 1: unknown option 'max_token' (did you mean 'max_tokens'?)" },
  { function() res:save("x.json", { detaled = true }) end, "res:save: unknown option 'detaled' (did you mean 'detailed'?)" },
  { function() res:summary{ percentile = { 99 } } end, "res:summary: unknown option 'percentile' (did you mean 'percentiles'?)" },
  { function() res:records{ warmups = true } end, "res:records: unknown option 'warmups' (did you mean 'warmup'?)" },
  { function() mb.dataset.random{ n = 2, input_lne = 5 } end, "mb.dataset.random: unknown option 'input_lne' (did you mean 'input_len'?)" },
  { function() mb.dataset.sharegpt{ n = 2 } end, "mb.dataset.sharegpt: option 'path' is required" },
  { function() mb.dataset.random{ n = 2, path = "x" } end, "mb.dataset.random: takes no 'path'" },
  { function() mb.aggregate(".", nil, { fromat = "csv" }) end, "mb.aggregate: unknown option 'fromat' (did you mean 'format'?)" },
  { function() return mb.runn{} end, "mb.runn is not part of the moonbench API (did you mean mb.run?)" },
  { function() return mb.dataset.randm{} end, "mb.dataset.randm is not part of the moonbench API (did you mean mb.dataset.random?)" },
}
for i, c in ipairs(cases) do
  local ok, e = pcall(c[1])
  check(not ok, "case " .. i .. " should fail")
  check(tostring(e):find(c[2], 1, true), "case " .. i .. ": expected «" .. c[2] .. "» in «" .. tostring(e) .. "»")
end

-- ignore_eos: on by default for the synthetic datasets, off for the others, and a
-- run or a request can set it.
check(reqs[1].body.ignore_eos == true, "random sets ignore_eos")
local off = mb.dataset.random{ n = 1, input_len = 5, output_len = 5, ignore_eos = false }
check(off[1].body == nil or off[1].body.ignore_eos == nil, "ignore_eos = false")
local one = mb.dataset.from_table{ { prompt = "a b", max_tokens = 3, ignore_eos = true } }
check(one[1].body.ignore_eos == true, "a request's ignore_eos")
-- Numbers that do not mislead: a custom schedule has no configured rate; the
-- peak output rate is never below the mean; concurrency never above its cap.
local cres = mb.run{ target = t, requests = reqs, num_requests = 10, progress = false,
  arrival = function(i) return (i - 1) * 0.01 end }
local cs = cres:summary()
check(cs.request_rate == nil and cs.schedule == "custom", "custom schedule: " .. tostring(cs.request_rate))
check(cs.max_output_tokens_per_s >= cs.output_throughput, "peak >= mean")
local one_at_a_time = mb.run{ target = t, requests = reqs, num_requests = 6, max_concurrency = 1, progress = false }:summary()
check(one_at_a_time.max_concurrent_requests == 1, "cap 1: " .. one_at_a_time.max_concurrent_requests)
-- A server that does not honour ignore_eos: the short answers are counted and
-- the table warns.
local deaf = mb.target{ sim = { ttft_ms = 1, itl_ms = 1, honor_ignore_eos = false, seed = 3 } }
local sres = mb.run{ target = deaf, requests = mb.dataset.random{ n = 10, input_len = 5, output_len = 40 }, progress = false }
local ss = sres:summary()
check(ss.short_outputs > 0 and ss.total_output_tokens < 400, "short outputs: " .. ss.short_outputs)
check(sres:records()[1].expected_output_tokens == 40, "expected length in the record")
check(res:summary().short_outputs == 0, "none on a server that honours it")
print("TYPOS OK")
