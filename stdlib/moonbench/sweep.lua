-- moonbench/sweep.lua —— 参数扫描（sweep）的配置读取、检查与计划。
-- Reading, checking and planning a sweep's config.yaml. Used by scripts/sweep.lua
-- (`moonbench sweep`) and scripts/check_server.lua (`moonbench check`).
--
-- 配置文件与原工具包（FlyAIBox/llm_benchmark 的 run.py + config.yaml）完全兼容：
--   model, base_url, tokenizer, input_output: [[输入, 输出], ...], concurrency_prompts: [[并发, 请求数], ...]
-- 结果文件名也相同：results/{模型短名}_{年月日_时分秒}/bench_io{输入}x{输出}_mc{并发}_np{请求数}.json
-- （与原工具包 main.py batch 一样，每次扫描一个新目录）
-- 另外可选：backend, endpoint, request_rates, repeats, result_dir, label, defaults（任意 bench 参数）,
-- sim（不写 base_url 时内置模拟服务器的参数）, bench_script（换成你自己复制修改过的基准脚本）。

local mb = require "moonbench"
local bench_flags = require "moonbench.bench_flags"

local M = {}

--- Every top-level key a config may have, with what it is.
M.KEYS = {
  model = "model name sent in requests (required with base_url)",
  base_url = "server URL; leave out to sweep the built-in simulator",
  tokenizer = "tokenizer path, model directory or HF id (required with base_url)",
  input_output = "list of [input_len, output_len]",
  concurrency_prompts = "list of [max_concurrency, num_prompts]",
  backend = "vllm (default), openai or openai-chat",
  endpoint = "API path",
  request_rates = "list of request rates (numbers or inf); each is a sweep dimension",
  repeats = "run every point this many times",
  result_dir = "where result files go (default: results)",
  label = "label of every run",
  defaults = "any `moonbench bench` flags for every run, e.g. {num-warmups: 2}",
  sim = "simulator settings when base_url is left out: preset, max_num_seqs, kv_cache_tokens, data_parallel, router, ... (the step engine) or ttft_ms, itl_ms, max_running (the fixed engine); jitter, tokens_per_chunk, faults",
  bench_script = "benchmark script to run for each point (default: scripts/benchmark_serving.lua)",
}

local SIM_KEYS = { ttft_ms = "number", itl_ms = "number", jitter = "number", tokens_per_chunk = "int",
  max_running = "int", faults = "string",
  -- step 引擎（类似 vLLM 的批处理引擎）· the step engine
  engine = "string", preset = "string", preset_file = "string", max_num_seqs = "int",
  max_num_batched_tokens = "int", kv_cache_tokens = "int", max_model_len = "int", data_parallel = "int",
  router = "string" }

local function norm_flag(k)
  return (tostring(k):gsub("^%-%-", ""):gsub("_", "-"))
end

local function keys_of(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- Loads and checks a sweep config. Errors name file:line and the fix, in opts.lang
--- ("en"/"zh"; default: the user's language) from the one message catalogue.
--- 读取并检查扫描配置；出错时指出 文件:行 和改法，语言由 opts.lang 决定。
function M.load(path, opts)
  local lang = (opts or {}).lang
  local function t(en, ...) return string.format(mb.tr(en, lang), ...) end
  if not mb.exists(path) and not mb.bundled(path) then
    error(t("moonbench sweep: config file %s not found (the bundled example: moonbench sweep scripts/config.yaml)", path), 0)
  end
  local ok, cfg, lines = pcall(mb.yaml.load, path)
  if not ok then error(cfg, 0) end
  local function at(key) return string.format("%s:%d", path, lines[key] or lines[""] or 1) end
  local function fail(key, msg) error(at(key) .. ": " .. msg, 0) end
  if type(cfg) ~= "table" then fail("", t("the config must be a mapping of keys (model: ..., input_output: ...)")) end
  local known = keys_of(M.KEYS)
  for k in pairs(cfg) do
    if M.KEYS[k] == nil then
      local hint = mb.suggest(tostring(k), known)
      fail(tostring(k), hint and t("unknown key '%s' (did you mean '%s'?)", tostring(k), hint)
        or t("unknown key '%s'; valid keys: %s", tostring(k), table.concat(known, ", ")))
    end
  end
  local function want_string(k)
    if cfg[k] ~= nil and type(cfg[k]) ~= "string" then fail(k, t("%s must be a string (%s)", k, M.KEYS[k])) end
  end
  for _, k in ipairs({ "model", "base_url", "tokenizer", "backend", "endpoint", "result_dir", "label", "bench_script" }) do
    want_string(k)
  end
  if cfg.base_url then
    for _, k in ipairs({ "model", "tokenizer" }) do
      if cfg[k] == nil then fail("", t("missing key '%s' (%s)", k, M.KEYS[k])) end
    end
  end
  local function pairs_list(k, a, b)
    local v = cfg[k]
    if v == nil then fail("", t("missing key '%s' (%s)", k, M.KEYS[k])) end
    if type(v) ~= "table" or #v == 0 then fail(k, t("%s must be a non-empty %s", k, M.KEYS[k])) end
    for i, item in ipairs(v) do
      local good = type(item) == "table" and #item == 2 and math.type(item[1]) == "integer" and math.type(item[2]) == "integer"
        and item[1] > 0 and item[2] > 0
      if not good then
        fail(k .. "." .. i, t("%s item %d must be [%s, %s] (two whole numbers > 0), got %s",
          k, i, a, b, mb.json.encode(item)))
      end
    end
  end
  pairs_list("input_output", "input_len", "output_len")
  pairs_list("concurrency_prompts", "max_concurrency", "num_prompts")
  if cfg.request_rates ~= nil then
    if type(cfg.request_rates) ~= "table" or #cfg.request_rates == 0 then
      fail("request_rates", t("request_rates must be a non-empty list of numbers or inf"))
    end
    for i, r in ipairs(cfg.request_rates) do
      if r == "inf" then cfg.request_rates[i] = math.huge
      elseif type(r) ~= "number" or r <= 0 then
        fail("request_rates." .. i, t("request rate %d must be a number > 0 or inf, got %s", i, tostring(r)))
      end
    end
  end
  if cfg.repeats ~= nil and (math.type(cfg.repeats) ~= "integer" or cfg.repeats < 1) then
    fail("repeats", t("repeats must be a whole number >= 1"))
  end
  if cfg.defaults ~= nil then
    if type(cfg.defaults) ~= "table" then fail("defaults", t("defaults must be a mapping of bench flags to values")) end
    local valid = {}
    for _, f in ipairs(bench_flags.flags) do
      if not f.group then valid[norm_flag(f[1])] = f end
    end
    local names = keys_of(valid)
    for k, v in pairs(cfg.defaults) do
      local flag = valid[norm_flag(k)]
      if not flag then
        local hint = mb.suggest(norm_flag(k), names)
        fail("defaults." .. tostring(k), hint
          and t("defaults: '%s' is not a `moonbench bench` flag (did you mean '%s'?)", tostring(k), hint)
          or t("defaults: '%s' is not a `moonbench bench` flag (see moonbench bench --help)", tostring(k)))
      end
      if flag.type == "bool" and type(v) ~= "boolean" then
        fail("defaults." .. tostring(k), t("defaults: '%s' is an on/off switch; write true or false", tostring(k)))
      end
    end
  end
  if cfg.sim ~= nil then
    if type(cfg.sim) ~= "table" then fail("sim", t("sim must be a mapping (ttft_ms: 50, itl_ms: 10, ...)")) end
    for k, v in pairs(cfg.sim) do
      local kind = SIM_KEYS[k]
      if not kind then
        local hint = mb.suggest(tostring(k), keys_of(SIM_KEYS))
        fail("sim." .. tostring(k), hint and t("sim: unknown key '%s' (did you mean '%s'?)", tostring(k), hint)
          or t("sim: unknown key '%s'", tostring(k)))
      end
      local good = (kind == "number" and type(v) == "number") or (kind == "int" and math.type(v) == "integer")
        or (kind == "string" and type(v) == "string")
      if not good then fail("sim." .. k, t("sim: %s must be a %s", k, t(kind == "int" and "whole number" or kind))) end
    end
    if cfg.base_url then fail("sim", t("sim settings only apply without base_url (the built-in simulator)")) end
  end
  cfg._path = path
  return cfg
end

local function flag_args(out, defaults)
  local ks = keys_of(defaults)
  for _, k in ipairs(ks) do
    local v = defaults[k]
    local name = "--" .. norm_flag(k)
    if v == true then out[#out + 1] = name
    elseif v == false then out[#out + 1] = "--no-" .. norm_flag(k)
    elseif type(v) == "table" then
      out[#out + 1] = name
      for _, x in ipairs(v) do out[#out + 1] = tostring(x) end
    else
      out[#out + 1] = name
      out[#out + 1] = v == math.huge and "inf" or tostring(v)
    end
  end
end

--- Python's float formatting for file names (8 -> "8.0", inf -> "inf").
function M.py_float(r)
  if r == math.huge then return "inf" end
  if math.type(r) == "integer" or r == math.floor(r) then return string.format("%.1f", r) end
  return tostring(r)
end

--- Where a sweep's run folders go: --result-dir, else the config's result_dir, else results.
--- 结果目录的上级目录：--result-dir，否则配置里的 result_dir，否则 results。
function M.parent(cfg, opts)
  return (opts or {}).result_dir or cfg.result_dir or "results"
end

--- The model a run folder is named after (the simulator's when there is no model).
function M.model(cfg)
  return cfg.model or (cfg.sim and "moonbench-sim") or "moonbench-sim"
end

--- The grid, in the seed's order (input_output outer, concurrency_prompts inner, then
--- rates and repeats). Each point has its bench argument list and result file, in
--- opts.dir (the run folder; default: the parent folder itself).
function M.plan(cfg, opts)
  opts = opts or {}
  local dir = opts.dir or M.parent(cfg, opts)
  local rates = cfg.request_rates or { false }
  local repeats = cfg.repeats or 1
  local points = {}
  for _, io in ipairs(cfg.input_output) do
    for _, cp in ipairs(cfg.concurrency_prompts) do
      for _, rate in ipairs(rates) do
        for rep = 1, repeats do
          local name = string.format("bench_io%dx%d_mc%d_np%d", io[1], io[2], cp[1], cp[2])
          if rate then name = name .. "_qps" .. M.py_float(rate) end
          if repeats > 1 then name = name .. "_rep" .. rep end
          local file = dir .. "/" .. name .. ".json"
          -- 与原工具包 run.py 相同的参数；defaults 放在前面，网格自己的参数在后面（后者优先）。
          local argv = {}
          flag_args(argv, cfg.defaults or {})
          local function add(...) for _, x in ipairs({ ... }) do argv[#argv + 1] = tostring(x) end end
          add("--backend", cfg.backend or "vllm")
          if cfg.model then add("--model", cfg.model) end
          if cfg.base_url then add("--base-url", cfg.base_url) end
          if cfg.tokenizer then add("--tokenizer", cfg.tokenizer) end
          if cfg.endpoint then add("--endpoint", cfg.endpoint) end
          if cfg.label then add("--label", cfg.label) end
          add("--dataset-name", "random", "--percentile-metrics", "ttft,tpot,itl,e2el")
          add("--random-input-len", io[1], "--random-output-len", io[2])
          add("--max-concurrency", cp[1], "--num-prompts", cp[2])
          if rate then add("--request-rate", rate == math.huge and "inf" or rate) end
          add("--save-result", "--result-filename", file)
          if opts.lang then add("--lang", opts.lang) end
          if cfg.sim then
            for k, v in pairs(cfg.sim) do add("--sim-" .. k:gsub("_", "-"), v) end
          end
          points[#points + 1] = { io = io, mc = cp[1], np = cp[2], rate = rate or nil, rep = rep,
            repeats = repeats, file = file, argv = argv }
        end
      end
    end
  end
  return points
end

--- What a run folder's sweep.json records of the plan, so --resume finds a folder
--- of the same config: every point's arguments without its result file and language.
--- 写入结果目录的 .sweep.json，用于 --resume 判断"同一个配置"：各组合的参数（去掉结果文件名与语言）。
function M.plan_key(points)
  local key = {}
  for i, p in ipairs(points) do
    local argv, skip = {}, false
    for _, a in ipairs(p.argv) do
      if skip then skip = false
      elseif a == "--result-filename" or a == "--lang" then skip = true
      else argv[#argv + 1] = a end
    end
    key[i] = argv
  end
  return mb.json.encode(key)
end

--- A point's label for progress lines: io=(1024,256) mc=64 np=640 [rate=8.0] [rep 2/3].
function M.describe(p)
  local s = string.format("io=(%d,%d) mc=%d np=%d", p.io[1], p.io[2], p.mc, p.np)
  if p.rate then s = s .. " rate=" .. M.py_float(p.rate) end
  if p.repeats > 1 then s = s .. string.format(" rep %d/%d", p.rep, p.repeats) end
  return s
end

--- Whether `file` holds a complete result (for --resume): a result file
--- (read as aggregate and report read it) with completed > 0, not marked partial.
--- 断点续跑（--resume）时判断结果文件是否完整：是结果文件、completed > 0、且不是 partial。
function M.valid_result(file)
  local r = mb.read_result(file)
  return r ~= nil and type(r.completed) == "number" and r.completed > 0 and r.partial ~= true
end

return M
