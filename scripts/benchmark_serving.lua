-- benchmark_serving.lua —— `moonbench bench` 就是运行这个脚本。
-- The vLLM-compatible front end: accepts the flags of vLLM's benchmark_serving.py,
-- runs the benchmark, prints vLLM's result table and writes vLLM's result JSON.
--
-- 想改它？复制一份再用 `moonbench run my_bench.lua -- <参数>` 运行即可，无需重新编译。
-- To change it, copy this file and run your copy with `moonbench run my_bench.lua -- <flags>`.
--
-- 一次基准测试做的事（What one benchmark does）:
--   1. 准备提示词（random 数据集：长度精确的随机 token 提示词）
--   2. 按到达过程发送请求：--request-rate 每秒多少个（inf = 一次全发），--burstiness 控制突发程度
--      （1.0 = 泊松到达 Poisson arrivals），--max-concurrency 限制同时在途的请求数（并发 concurrency）
--   3. 对每个请求测 TTFT、TPOT、ITL、E2EL（见 moonbench/report.lua 里的小词典）
--   4. 打印结果表，按需保存 JSON（与 vLLM 的 --save-result 文件格式兼容）

local mb = require "moonbench"
local argparse = require "moonbench.argparse"

local spec = require "moonbench.bench_flags"

local args = argparse.parse(spec, arg)
-- 提示文字写英文，mb.tr 从唯一的消息目录（src/i18n/messages.zh.tsv）取中文，再填入 %d/%s。
-- Texts are English; mb.tr finds their Chinese in the one message catalogue.
local function t(en, ...) return string.format(mb.tr(en, args.lang), ...) end
local function say(en, ...) print(t(en, ...)) end

-- --preset seed-single：原工具包 `main.py single` 的默认值（100 个请求、并发 10、输入/输出各 256 个 token），
-- 结果存进新的结果目录 results/{模型短名}_{年月日_时分秒}/single_bench_{年月日_时分秒}.json。
-- 明确给出的参数优先。The seed's single-run defaults; flags given explicitly win.
if args.preset then
  local g = args._given
  local function default(key, v) if not g[key] then args[key] = v end end
  default("num_prompts", 100)
  default("max_concurrency", 10)
  default("random_input_len", 256)
  default("random_output_len", 256)
  default("percentile_metrics", "ttft,tpot,itl,e2el")
  args.save_result = true
  if not g.result_dir and not g.result_filename then
    args.result_dir = mb.run_folder("results", args.model or "moonbench-sim")
    args.result_filename = "single_bench_" .. mb.date():gsub("-", "_") .. ".json"
  end
end

-- 参数检查 Check the flags -------------------------------------------------------
-- --input-len / --output-len 是通用写法，对应到各数据集自己的长度参数（与 vLLM 相同）。
-- The general lengths map to every dataset's own, as in vLLM.
if args.input_len then
  args.random_input_len = args.input_len
  args.sonnet_input_len = args.input_len
end
if args.output_len then
  for _, k in ipairs({ "random", "sonnet", "sharegpt", "custom", "spec_bench", "prefix_repetition", "hf" }) do
    args[k .. "_output_len"] = args.output_len
  end
end
-- 只属于某个数据集的参数，和别的数据集一起给出时提醒一句（vLLM 会悄悄忽略）。
-- A dataset's own flag given with another dataset is reported, never silently ignored.
local own_flags = {
  random = { "random_input_len", "random_output_len", "random_range_ratio", "random_prefix_len", "random_batch_size" },
  ["random-mm"] = { "random_input_len", "random_output_len", "random_range_ratio", "random_prefix_len",
    "random_mm_base_items_per_request", "random_mm_num_mm_items_range_ratio", "random_mm_limit_mm_per_prompt",
    "random_mm_bucket_config" },
  ["random-rerank"] = { "random_input_len", "random_range_ratio", "random_batch_size", "no_reranker" },
  sharegpt = { "sharegpt_output_len", "no_oversample" },
  sonnet = { "sonnet_input_len", "sonnet_output_len", "sonnet_prefix_len" },
  custom = { "custom_output_len", "skip_chat_template", "no_oversample" },
  spec_bench = { "spec_bench_output_len", "spec_bench_category", "skip_chat_template", "no_oversample" },
  prefix_repetition = { "prefix_repetition_prefix_len", "prefix_repetition_suffix_len",
    "prefix_repetition_num_prefixes", "prefix_repetition_output_len" },
  burstgpt = { "burstgpt_model", "use_trace_timestamps", "trace_time_scale", "self_timed" },
  mooncake = { "trace_block_size", "trace_time_scale", "self_timed" },
  timed_trace = { "timed_trace_chunk_hash_size", "timed_trace_sec_multiplier", "timed_trace_label_timestamp",
    "timed_trace_label_input_length", "timed_trace_label_output_length", "timed_trace_label_hash_ids",
    "trace_time_scale", "self_timed" },
  hf = { "hf_name", "hf_subset", "hf_split", "hf_output_len", "enable_multimodal_chat",
    "blazedit_min_distance", "blazedit_max_distance", "bfcl_categories", "asr_min_audio_len_sec",
    "asr_max_audio_len_sec", "skip_chat_template", "no_oversample" },
  -- vLLM 的这些数据集 moonbench 还没有。Datasets moonbench does not have yet.
  speed_bench = { "speed_bench_dataset_subset", "speed_bench_output_len", "speed_bench_category" },
}
own_flags.custom_image = { "custom_output_len", "custom_ensure_client_side_data", "no_oversample" }
own_flags.custom_audio = { "custom_output_len", "no_oversample" }
local mine = {}
for _, k in ipairs(own_flags[args.dataset_name] or {}) do mine[k] = true end
local unused = {}
for ds, keys in pairs(own_flags) do
  for _, k in ipairs(keys) do
    if args._given[k] and not mine[k] and not (k:match("_output_len$") and args._given.output_len)
      and not (k:match("_input_len$") and args._given.input_len) then
      unused[#unused + 1] = "--" .. k:gsub("_", "-") .. " (" .. ds .. ")"
    end
  end
end
table.sort(unused)
local seen_unused = {}
for _, u in ipairs(unused) do
  if not seen_unused[u] then
    seen_unused[u] = true
    say("note: %s does nothing with --dataset-name %s", u, args.dataset_name)
  end
end
if (args.profile_batch_threshold or args._given.profile_duration) and not args.profile then
  error("moonbench bench: --profile-batch-threshold and --profile-duration go with --profile "
    .. "(add --profile to profile the server)", 0)
end
if args.num_runs < 1 then error("moonbench bench: --num-runs must be at least 1", 0) end
-- --bounded 不在内存里留记录，所以需要记录的输出要在开跑之前就拒绝，免得白跑一场。
-- --bounded keeps no records, so outputs that need them are refused before the run, not after it.
if args.bounded then
  if not args.save_records then
    error("moonbench bench: --bounded keeps every record only in the --save-records file: add --save-records FILE", 0)
  end
  for _, f in ipairs{ "save_detailed", "plot_timeline", "plot_dataset_stats", "steady_state" } do
    if args[f] then
      error("moonbench bench: --" .. f:gsub("_", "-") .. " needs every request's record in memory, "
        .. "and --bounded keeps none: drop one of the two (the records file has every record)", 0)
    end
  end
end
if args.random_batch_size < 1 then
  error("moonbench bench: --random-batch-size must be at least 1", 0)
end
if args.num_prompts < 1 and not args.duration then
  error("moonbench bench: --num-prompts must be at least 1", 0)
end
if args.max_concurrency and args.max_concurrency < 1 then
  error("moonbench bench: --max-concurrency must be at least 1", 0)
end
if args.request_rate <= 0 then
  error("moonbench bench: --request-rate must be > 0 (or inf)", 0)
end
-- 每个请求都要有超时（默认 600 秒），不允许 0 或负数：网络上的每一步都必须有上限。
-- Every request has a time limit; 0 or less is a mistake, not "no limit".
if not (args.request_timeout > 0) then
  error("moonbench bench: --request-timeout must be > 0 seconds (got " .. tostring(args.request_timeout)
    .. "); every request has a limit, e.g. --request-timeout 3600 for an hour", 0)
end
local percentiles = {}
for _, p in ipairs(argparse.split(args.metric_percentiles)) do
  local v = tonumber(p)
  if not v or v < 0 or v > 100 then
    error("moonbench bench: --metric-percentiles: '" .. p .. "' is not a percentile between 0 and 100", 0)
  end
  percentiles[#percentiles + 1] = v
end
-- 时间线的两个 ITL 阈值（毫秒），在发送前就检查。The timeline's thresholds, checked before sending.
local itl_thresholds = {}
for _, v in ipairs(argparse.split(args.timeline_itl_thresholds)) do itl_thresholds[#itl_thresholds + 1] = tonumber(v) end
if #itl_thresholds ~= 2 or not itl_thresholds[1] or not itl_thresholds[2]
    or not (itl_thresholds[1] > 0 and itl_thresholds[2] > itl_thresholds[1]) then
  error("moonbench bench: --timeline-itl-thresholds takes two rising numbers in ms, like 25,50; got '"
    .. args.timeline_itl_thresholds .. "'", 0)
end

-- 目标服务器 Target ---------------------------------------------------------------
local use_sim = args.base_url == nil and args.host == nil and args.port == nil
-- 一个必须是 JSON 对象的参数（--extra-body、--chat-template-kwargs）。A flag holding a JSON object.
local function json_object(flag, text, example)
  if text == nil then return {} end
  local ok, v = pcall(mb.json.decode, text)
  if not ok or type(v) ~= "table" then
    error("moonbench bench: " .. flag .. " must be a JSON object, e.g. '" .. example .. "'", 0)
  end
  return v
end
-- --random-range-ratio：一个数，或 JSON {"input": r1, "output": r2}（与 vLLM 相同）。A number, or JSON per side.
local range_in, range_out
do
  local text = tostring(args.random_range_ratio)
  range_in = tonumber(text)
  if not range_in then
    local ok, v = pcall(mb.json.decode, text)
    local fix = "; give a number like 0.25 or '{\"input\": 0.1, \"output\": 0.5}'"
    if not ok or type(v) ~= "table" then
      error("moonbench bench: --random-range-ratio '" .. text .. "' is neither a number nor JSON" .. fix, 0)
    end
    for k in pairs(v) do
      if k ~= "input" and k ~= "output" then
        error("moonbench bench: --random-range-ratio: unknown key '" .. tostring(k) .. "' (keys: input, output)" .. fix, 0)
      end
    end
    if type(v.input or 0) ~= "number" or type(v.output or 0) ~= "number" then
      error("moonbench bench: --random-range-ratio: input and output must be numbers" .. fix, 0)
    end
    range_in, range_out = v.input or 0, v.output or 0
  end
end
local body = {}
for k, v in pairs(json_object("--extra-body", args.extra_body, '{"top_k": 20}')) do body[k] = v end
-- 采样参数写进每个请求体（各后端按自己的字段名发送，例如 TGI 放进 parameters）。与今天的 vLLM 相同：
-- 没给 --temperature 时不发送温度，由服务器决定（旧版 vLLM 会发送 0.0）。
-- Sampling flags go into every body (each backend puts them where its API reads them). As today's
-- vLLM, no temperature is sent unless given: the server's default applies.
local sampling = { temperature = args.temperature, top_p = args.top_p, top_k = args.top_k, min_p = args.min_p,
  frequency_penalty = args.frequency_penalty, presence_penalty = args.presence_penalty,
  repetition_penalty = args.repetition_penalty, logprobs = args.logprobs }
for k, v in pairs(sampling) do body[k] = v end
if args.use_beam_search then body.use_beam_search = true end
if body.temperature == nil and not use_sim then
  say("note: no --temperature: the server's default sampling applies (as today's vllm bench serve; --temperature 0 for greedy decoding)")
end
local template_vars = json_object("--chat-template-kwargs", args.chat_template_kwargs, '{"enable_thinking": false}')
-- 合成的提示词（random、prefix_repetition、burstgpt、mooncake）由数据集自己给每个请求设 ignore_eos
-- （vLLM 新版对 random 同样如此），这样每个请求都输出满指定的 token 数；--ignore-eos 对其它数据集也打开它。
-- Synthetic datasets set ignore_eos on each request themselves (as in Lua); --ignore-eos turns it on for all.
local ignore_eos = nil
if args._given.ignore_eos then ignore_eos = args.ignore_eos end

-- 分词器模式：moonbench 只读 tokenizer.json（Rust 的 tokenizers 库）。Tokenizer modes.
local mode = args.tokenizer_mode
if mode == "mistral" or mode == "deepseek_v32" then
  error("moonbench bench: --tokenizer-mode " .. mode .. " reads a Python-only tokenizer format; moonbench reads "
    .. "tokenizer.json: pass --tokenizer with the model's Hugging Face tokenizer.json (or its directory), "
    .. "or --tokenizer-mode auto", 0)
elseif mode ~= "auto" and mode ~= "hf" and mode ~= "slow" then
  error("moonbench bench: --tokenizer-mode '" .. mode .. "' is not one moonbench knows (auto, hf, slow; mistral and "
    .. "deepseek_v32 are Python-only)", 0)
end
-- 分词器的来源与 vLLM 相同：--tokenizer，否则 --model，否则服务器 /v1/models 报告的模型；
-- 本地缓存里没有时从 Hugging Face Hub 下载（HF_ENDPOINT、HF_TOKEN、HF_HUB_OFFLINE）。
-- The tokenizer as vLLM finds it: --tokenizer, else --model, else the model /v1/models reports.
local tokenizer_spec = args.tokenizer or args.model
if use_sim and not args.tokenizer and not args.model then tokenizer_spec = "words" end
if args.skip_tokenizer_init then tokenizer_spec = "words" end
if not tokenizer_spec then
  local base = args.base_url or ("http://" .. (args.host or "127.0.0.1") .. ":" .. tostring(args.port or 8000))
  local status, body = mb.http_get(base:gsub("/+$", "") .. "/v1/models", args.request_timeout)
  local ok, models = pcall(mb.json.decode, body or "")
  local first = ok and status == 200 and type(models) == "table" and type(models.data) == "table" and models.data[1]
  if not first then
    error("moonbench bench: no --tokenizer or --model, and " .. base .. "/v1/models did not name a model ("
      .. (status and ("HTTP " .. status) or tostring(body)) .. "); pass --tokenizer (a tokenizer.json, a model "
      .. "directory or a Hub model id) or --model, or --tokenizer words to count one token per word", 0)
  end
  tokenizer_spec = first.root or first.id
  say("Tokenizer: %s (the model %s/v1/models reports)", tokenizer_spec, base)
end
-- --revision：Hub 上的分词器版本（分支、标签或提交）。The tokenizer's revision on the Hub.
local tok = mb.tokenizer(tokenizer_spec, { revision = args.revision })

-- 不加 --disable-streaming 时用后端的默认值（DeepSpeed-MII 与 embeddings 不支持流式）。
local stream = nil
if args.disable_streaming then stream = false end

-- 模拟器的报错写的是 serve-sim 的参数名（如 "max_num_seqs (--max-num-seqs)"）；在 bench 里换成
-- bench 自己的 --sim-* 参数，让用户知道该改哪个参数。
-- The simulator's errors name serve-sim's flags; in bench they become bench's --sim-* flags.
local SIM_FLAGS = { ["ttft-ms"] = true, ["itl-ms"] = true, jitter = true, ["tokens-per-chunk"] = true,
  ["max-running"] = true, ["reasoning-tokens"] = true, faults = true, engine = true, preset = true,
  ["preset-file"] = true, ["max-num-seqs"] = true, ["max-num-batched-tokens"] = true, ["kv-cache-tokens"] = true,
  ["max-model-len"] = true, ["data-parallel"] = true, router = true }
local function bench_sim_error(msg)
  msg = tostring(msg):gsub("[%w_]+ %(%-%-([%w%-]+)%)", function(flag)
    if SIM_FLAGS[flag] then return "--sim-" .. flag end
  end)
  msg = msg:gsub("^runtime error: ", "")
  msg = msg:gsub("engine = 'fixed' %(%-%-engine fixed%)", "--sim-engine fixed")
  msg = msg:gsub("num_gpu_blocks/kv_cache_tokens %(%-%-num%-gpu%-blocks/%-%-kv%-cache%-tokens%)", "--sim-kv-cache-tokens")
  return msg
end

local ok_target, target = pcall(mb.target, {
  base_url = args.base_url,
  host = args.host,
  port = args.port,
  backend = args.backend,
  endpoint = args.endpoint,
  model = args.model,
  served_model_name = args.served_model_name,
  api_key = args.api_key,
  headers = argparse.pairs_of(args.header, "--header"),
  timeout = args.request_timeout,
  stream = stream,
  continuous_usage = args.continuous_usage_stats,
  request_id_prefix = args.request_id_prefix,
  insecure = args.insecure,
  ca_cert = args.ca_cert,
  body = body,
  tokenizer = tok,
  sim = use_sim and {
    ttft_ms = args.sim_ttft_ms, itl_ms = args.sim_itl_ms, jitter = args.sim_jitter,
    tokens_per_chunk = args.sim_tokens_per_chunk, max_running = args.sim_max_running,
    reasoning_tokens = args.sim_reasoning_tokens,
    faults = args.sim_faults, seed = args.seed,
    -- step 引擎（--sim-engine step）：并发、KV 缓存、前缀缓存都会影响耗时 · the step engine
    engine = args.sim_engine, preset = args.sim_preset, preset_file = args.sim_preset_file,
    max_num_seqs = args.sim_max_num_seqs,
    max_num_batched_tokens = args.sim_max_num_batched_tokens, kv_cache_tokens = args.sim_kv_cache_tokens,
    max_model_len = args.sim_max_model_len, enable_prefix_caching = args.sim_no_prefix_caching and false or nil,
    data_parallel = args.sim_data_parallel, router = args.sim_router,
  } or nil,
})
if not ok_target then
  error(use_sim and bench_sim_error(target) or target, 0)
end

-- 池化类后端（embeddings、pooling、rerank；target.pooling）没有输出 token，默认只报告 E2EL（与 vLLM 相同）。
-- Pooling backends (target.pooling) have no output tokens: E2EL by default, as vLLM.
local metrics = argparse.split(args.percentile_metrics or (target.pooling and "e2el" or "ttft,tpot,itl"))

-- 提示词 Prompts ------------------------------------------------------------------
local is_chat = target.api == "chat"
local function dataset_path()
  if not args.dataset_path then
    error("moonbench bench: --dataset-name " .. args.dataset_name .. " needs --dataset-path FILE", 0)
  end
  return args.dataset_path
end
-- 扫描（--sweep-*，与 vLLM 的 Rust 客户端相同）：每个并发上限 / 请求速率各跑一次。
-- Sweeps: one run per concurrency cap and/or request rate.
local sweep_conc, sweep_rate = {}, {}
for _, v in ipairs(argparse.split(args.sweep_max_concurrency or "")) do
  local c = math.tointeger(tonumber(v))
  if not c or c < 1 then
    error("moonbench bench: --sweep-max-concurrency takes whole numbers >= 1, like 1,2,4,8; got '" .. v .. "'", 0)
  end
  sweep_conc[#sweep_conc + 1] = c
end
for _, v in ipairs(argparse.split(args.sweep_request_rate or "")) do
  local r = (v:lower() == "inf") and math.huge or tonumber(v)
  if not r or r <= 0 then
    error("moonbench bench: --sweep-request-rate takes rates > 0 (or inf), like 1,2,4,inf; got '" .. v .. "'", 0)
  end
  sweep_rate[#sweep_rate + 1] = r
end
if args.sweep_num_prompts_factor and (#sweep_conc == 0 or not (args.sweep_num_prompts_factor > 0)) then
  error("moonbench bench: --sweep-num-prompts-factor needs --sweep-max-concurrency and a factor > 0", 0)
end
if #sweep_rate > 0 and (args.ramp_up_strategy or args.self_timed) then
  error("moonbench bench: --sweep-request-rate sets the rate of each run; it cannot be combined with "
    .. "--ramp-up-strategy or --self-timed", 0)
end
local points = {}
for _, c in ipairs(#sweep_conc > 0 and sweep_conc or { args.max_concurrency or false }) do
  for _, r in ipairs(#sweep_rate > 0 and sweep_rate or { false }) do
    points[#points + 1] = { conc = c or nil, rate = r or nil,
      n = args.sweep_num_prompts_factor and math.ceil(args.sweep_num_prompts_factor * c) or nil }
  end
end
local sweeping = #points > 1 or #sweep_conc > 0 or #sweep_rate > 0

local n = math.max(args.num_prompts, 1)
for _, pt in ipairs(points) do if pt.n and pt.n > n then n = pt.n end end
local requests
local name = args.dataset_name
if name == "random" then
  requests = mb.dataset.random{ ignore_eos = ignore_eos,
    tokenizer = tok, n = n, input_len = args.random_input_len, output_len = args.random_output_len,
    range_ratio = range_in, output_range_ratio = range_out, prefix_len = args.random_prefix_len, seed = args.seed,
    token_ids = args.prompt_token_ids, batch_size = args.random_batch_size,
  }
elseif name == "random-mm" then
  -- random 数据集 + 合成图片（随机像素的 JPEG），与 vLLM 的 random-mm 相同；只有对话接口能发送图片。
  -- The random dataset with synthetic images after each prompt, as vLLM's random-mm; chat backends only.
  if not is_chat then
    error("moonbench bench: --dataset-name random-mm sends images, which only a chat backend takes: "
      .. "use --backend openai-chat", 0)
  end
  local limits = json_object("--random-mm-limit-mm-per-prompt", args.random_mm_limit_mm_per_prompt, '{"image": 3}')
  -- vLLM 的写法 {(高, 宽, 帧数): 概率, ...}。vLLM's Python-literal form.
  local buckets, text = {}, args.random_mm_bucket_config
  local body = text:match("^%s*{(.*)}%s*$")
  if not body then
    error("moonbench bench: --random-mm-bucket-config takes {(height, width, frames): probability, ...}, like "
      .. "'{(256, 256, 1): 0.5, (720, 1280, 1): 0.5}'; got '" .. text .. "'", 0)
  end
  for item in body:gmatch("[^%)]*%)%s*:%s*[^,}]+") do
    local h, w, f, p = item:match("^[%s,]*%(%s*(%d+)%s*,%s*(%d+)%s*,%s*(%d+)%s*%)%s*:%s*([%d%.eE+-]+)%s*$")
    if not h or not tonumber(p) then
      error("moonbench bench: --random-mm-bucket-config: '" .. item:gsub("^[%s,]+", "")
        .. "' is not (height, width, frames): probability", 0)
    end
    buckets[#buckets + 1] = { height = tonumber(h), width = tonumber(w), frames = tonumber(f), probability = tonumber(p) }
  end
  if #buckets == 0 then
    error("moonbench bench: --random-mm-bucket-config has no (height, width, frames): probability entry", 0)
  end
  requests = mb.dataset.random{ ignore_eos = ignore_eos, tokenizer = tok, n = n, input_len = args.random_input_len,
    output_len = args.random_output_len, range_ratio = range_in, output_range_ratio = range_out,
    prefix_len = args.random_prefix_len, seed = args.seed }
  requests = requests:with_images{ base_items_per_request = args.random_mm_base_items_per_request,
    num_mm_items_range_ratio = args.random_mm_num_mm_items_range_ratio, limit_mm_per_prompt = limits,
    buckets = buckets, seed = args.seed }
elseif name == "random-rerank" then
  -- 重排序：一个随机查询 + --num-prompts 个随机文档，每个请求带 --random-batch-size 个文档（与 vLLM 相同）。
  -- One query and --num-prompts documents, --random-batch-size documents per request, as vLLM.
  requests = mb.dataset.random_rerank{ tokenizer = tok, n = n, input_len = args.random_input_len,
    range_ratio = range_in, batch_size = args.random_batch_size, reranker = not args.no_reranker,
    seed = args.seed }
elseif name == "sharegpt" then
  requests = mb.dataset.sharegpt{ ignore_eos = ignore_eos, path = dataset_path(), tokenizer = tok, n = n, output_len = args.sharegpt_output_len,
    seed = args.seed, oversample = not args.no_oversample }
elseif name == "sonnet" then
  -- 文本补全接口发送套用对话模板后的文本；对话接口发送原文（由服务器套模板），与 vLLM 相同。
  requests = mb.dataset.sonnet{ ignore_eos = ignore_eos, path = args.dataset_path, tokenizer = tok, n = n, input_len = args.sonnet_input_len,
    output_len = args.sonnet_output_len, prefix_len = args.sonnet_prefix_len, seed = args.seed, chat = is_chat }
elseif name == "burstgpt" then
  requests = mb.dataset.burstgpt{ ignore_eos = ignore_eos, path = dataset_path(), tokenizer = tok, n = n, seed = args.seed,
    model = args.burstgpt_model, use_timestamps = args.use_trace_timestamps, token_ids = args.prompt_token_ids }
elseif name == "custom" then
  requests = mb.dataset.custom{ ignore_eos = ignore_eos, path = dataset_path(), tokenizer = tok, n = n,
    output_len = args.custom_output_len, shuffle = not args.disable_shuffle, seed = args.seed }
elseif name == "custom_image" then
  -- vLLM 的 custom_image：每行一条带图片的对话消息；图片默认以 file:// 地址发送（服务器自己读文件），
  -- --custom-ensure-client-side-data 时在本机读取并编码成 data URL。只有对话接口能发送图片。
  -- vLLM's custom_image: one chat message with images per line; chat backends only.
  if not is_chat and target.api ~= "embeddings-chat" then
    error("moonbench bench: --dataset-name custom_image sends images, which only a chat backend takes: "
      .. "use --backend openai-chat (or openai-embeddings-chat, -clip, -vlm2vec)", 0)
  end
  requests = mb.dataset.custom_image{ ignore_eos = ignore_eos, path = dataset_path(), tokenizer = tok, n = n,
    output_len = args.custom_output_len, shuffle = not args.disable_shuffle, seed = args.seed,
    client_side_data = args.custom_ensure_client_side_data }
elseif name == "custom_audio" then
  -- vLLM 的 custom_audio：每行一段音频（WAV 或 FLAC）。openai-audio 以 multipart 表单发给 /v1/audio/transcriptions，
  -- 对话接口则作为 input_audio 片段发送（音频对话模型，如 Qwen2-Audio）。
  -- vLLM's custom_audio: one clip a line, to the transcription API or as a chat input_audio part.
  if target.api ~= "audio" and not is_chat then
    error("moonbench bench: --dataset-name custom_audio sends audio: use --backend openai-audio "
      .. "(/v1/audio/transcriptions) or openai-chat (audio chat models)", 0)
  end
  requests = mb.dataset.custom_audio{ ignore_eos = ignore_eos, path = dataset_path(), tokenizer = tok, n = n,
    output_len = args.custom_output_len, shuffle = not args.disable_shuffle, seed = args.seed }
elseif name == "spec_bench" then
  -- spec_bench 是 Spec-Bench 的 question.jsonl：取每行 turns 的第一轮，可按 category 过滤。
  requests = mb.dataset.custom{ ignore_eos = ignore_eos, path = dataset_path(), tokenizer = tok, n = n,
    output_len = args.spec_bench_output_len, category = args.spec_bench_category,
    shuffle = not args.disable_shuffle, seed = args.seed }
elseif name == "hf" then
  -- Hugging Face 数据集：按 vLLM 认识的数据集 id 构造提示（见 docs/datasets.md）。
  -- A Hugging Face dataset, its prompts made the way vLLM makes them for its id.
  if args.bfcl_categories then
    error("moonbench bench: --bfcl-categories goes with vLLM's BFCL dataset, which moonbench's hf dataset "
      .. "does not have yet", 0)
  end
  requests = mb.dataset.hf{ ignore_eos = ignore_eos, path = dataset_path(), tokenizer = tok, n = n,
    name = args.hf_name, subset = args.hf_subset, split = args.hf_split, revision = args.revision,
    output_len = args.hf_output_len, seed = args.seed, shuffle = not args.disable_shuffle,
    oversample = not args.no_oversample, chat = is_chat,
    skip_chat_template = args.skip_chat_template or args.apply_chat_template, chat_template_kwargs = template_vars,
    blazedit_min_distance = args.blazedit_min_distance, blazedit_max_distance = args.blazedit_max_distance,
    asr_min_audio_len_sec = args.asr_min_audio_len_sec,
    asr_max_audio_len_sec = args.asr_max_audio_len_sec ~= math.huge and args.asr_max_audio_len_sec or nil }
elseif name == "prefix_repetition" then
  requests = mb.dataset.prefix_repetition{ ignore_eos = ignore_eos, tokenizer = tok, n = n, prefix_len = args.prefix_repetition_prefix_len,
    suffix_len = args.prefix_repetition_suffix_len, num_prefixes = args.prefix_repetition_num_prefixes,
    output_len = args.prefix_repetition_output_len, seed = args.seed, token_ids = args.prompt_token_ids }
elseif name == "mooncake" then
  requests = mb.dataset.mooncake{ ignore_eos = ignore_eos, path = dataset_path(), tokenizer = tok,
    n = args._given.num_prompts and n or nil, block_size = args.trace_block_size, seed = args.seed,
    token_ids = args.prompt_token_ids }
elseif name == "timed_trace" then
  -- vLLM 的 timed_trace：发送 token id（所以只能用文本补全接口），字段名与时间单位可配置。
  -- vLLM's timed_trace sends token ids, so it needs a completions backend.
  if target.api ~= "completions" then
    error("moonbench bench: --dataset-name timed_trace sends token ids, which only a completions backend "
      .. "(vllm, openai) accepts; got --backend " .. args.backend .. " (for text prompts use --dataset-name mooncake)", 0)
  end
  requests = mb.dataset.mooncake{ ignore_eos = true, path = dataset_path(), tokenizer = tok,
    n = args._given.num_prompts and n or nil, block_size = args.timed_trace_chunk_hash_size, seed = args.seed,
    timestamp_unit = args.timed_trace_sec_multiplier, token_ids = true,
    timestamp_key = args.timed_trace_label_timestamp, input_length_key = args.timed_trace_label_input_length,
    output_length_key = args.timed_trace_label_output_length, hash_ids_key = args.timed_trace_label_hash_ids }
end
if args.apply_chat_template and not is_chat then
  requests = requests:apply_chat_template(tok, { vars = template_vars })
elseif (name == "custom" or name == "spec_bench") and not is_chat and not args.skip_chat_template
    and tok:has_chat_template() then
  -- 与 vLLM 相同：对文本补全接口，先用分词器的对话模板渲染提示（--skip-chat-template 关闭）。
  -- As vLLM: for a completions backend the prompt is rendered with the chat template first.
  requests = requests:apply_chat_template(tok, { vars = template_vars })
end
if args.lora_modules then
  -- 每个请求用一个 LoRA 适配器名作为 model（与 vLLM 的 --lora-modules 相同）。
  if target.api ~= "completions" and target.api ~= "chat" then
    error("moonbench bench: --lora-modules names the model of OpenAI-compatible requests; backend "
      .. args.backend .. " has no model field for it", 0)
  end
  requests = requests:assign_models{ models = args.lora_modules, assignment = args.lora_assignment, seed = args.seed }
end
if args.prompt_token_ids and (name == "sharegpt" or name == "custom" or name == "sonnet") then
  requests = requests:to_token_ids(tok)
end

-- 与 vLLM 相同：custom/spec_bench/custom_image 的行数不够 --num-prompts 时重复使用（--no-oversample 关闭）。
-- As vLLM, custom, spec_bench and custom_image lines are reused to reach --num-prompts unless --no-oversample.
local send_n = #requests
if (name == "custom" or name == "spec_bench" or name == "custom_image" or name == "custom_audio")
    and not args.no_oversample
    and #requests < n then send_n = n end

-- 核对提示长度（--verify-prompt-lengths）：问服务器的 /tokenize 每个提示有多少 token。
-- Ask the server's /tokenize how long each prompt really is, before anything is measured.
local length_check = nil
if args.verify_prompt_lengths then
  local c = target:verify_prompt_lengths(requests)
  length_check = c
  local differ = c.checked - c.equal
  say("Prompt lengths (%s, %s form): %d checked, %d counted alike, %d differ; %d not checked",
      c.url, c.dialect or "-", c.checked, c.equal, differ, c.skipped)
  if differ > 0 then
    local parts = {}
    for d, count in pairs(c.differences) do parts[#parts + 1] = { tonumber(d), count } end
    table.sort(parts, function(a, b) return a[1] < b[1] end)
    local text = {}
    for _, p in ipairs(parts) do text[#text + 1] = string.format("%+d: %d", p[1], p[2]) end
    say("  server minus moonbench (tokens: prompts): %s", table.concat(text, ", "))
    for _, e in ipairs(c.examples) do
      say("  prompt %d: %d tokens here, %d by the server", e.index, e.ours, e.server)
    end
    say("  (the tokenizer here is not the server's: pass --tokenizer with the served model's)")
  end
  if c.over_max_model_len > 0 then
    say("  %d prompts plus max_tokens exceed the server's max_model_len %d: the server will refuse them",
        c.over_max_model_len, c.max_model_len)
  end
end

-- 只看数据集（--dry-run）：打印形状，不发送。Dry run: the dataset's shape, nothing sent.
if args.dry_run then
  local st = requests:stats()
  local function row(label, d)
    if d.count == 0 then return string.format("%-34s %s", label, t("(left to the server)")) end
    return string.format("%-34s %d / %.0f / %.1f / %.0f / %.0f / %.0f", label, d.count, d.total, d.mean, d.median,
      d.p99, d.max)
  end
  say("Dry run: nothing was sent.")
  print(string.format("%-34s %s", t("Dataset:"), t("%s (%d requests built, %d to send)", name, st.requests, send_n)))
  say("Per request: count / total / mean / median / p99 / max")
  print(row(t("Prompt tokens:"), st.prompt_tokens))
  print(row(t("Output tokens asked (max_tokens):"), st.max_tokens))
  say("Tokenizer: %s", tok.name)
  return nil
end

-- 到达过程 Arrivals ---------------------------------------------------------------
-- 轨迹数据（mooncake；burstgpt 加 --use-trace-timestamps）按记录的时间戳发送，除非显式给了 --request-rate。
local arrival
-- 按时间戳回放（--self-timed）：有时间戳的数据默认回放，除非给了 --request-rate 或 --no-self-timed。
local has_times = requests:timestamps() ~= nil
local replay = has_times and not args._given.request_rate
if args._given.self_timed then
  if args.self_timed and not has_times then
    error("moonbench bench: --self-timed needs requests with timestamps (timed_trace, mooncake, burstgpt with "
      .. "--use-trace-timestamps); --dataset-name " .. name .. " has none", 0)
  end
  replay = args.self_timed
end
if args.ramp_up_strategy then
  -- 斜坡（ramp-up）：第 i 个请求的速率从 start 升到 end，与 vLLM 的 --ramp-up-* 相同。
  local s, e = args.ramp_up_start_rps, args.ramp_up_end_rps
  if s == nil or e == nil then
    error("moonbench bench: --ramp-up-strategy needs both --ramp-up-start-rps and --ramp-up-end-rps", 0)
  end
  if args._given.request_rate and args.request_rate ~= math.huge then
    error("moonbench bench: --ramp-up-strategy and a finite --request-rate cannot be used together; drop one", 0)
  end
  if s <= 0 or s > e then
    error(string.format("moonbench bench: need 0 < --ramp-up-start-rps <= --ramp-up-end-rps, got %s and %s", s, e), 0)
  end
  replay = false
  arrival = mb.arrival.ramp{ from = s, to = e, requests = #requests, shape = args.ramp_up_strategy,
    random = true, burstiness = args.burstiness, seed = args.seed }
elseif args.ramp_up_start_rps or args.ramp_up_end_rps then
  error("moonbench bench: --ramp-up-start-rps/--ramp-up-end-rps need --ramp-up-strategy linear|exponential", 0)
elseif replay then
  arrival = mb.arrival.trace{ timestamps = requests, scale = args.trace_time_scale }
end
-- 固定速率的到达过程（扫描时每个点重新生成）。Arrivals at a fixed rate (made again per sweep point).
local function rate_arrival(rate)
  if rate == math.huge then return mb.arrival.infinite() end
  return mb.arrival.poisson{ rate = rate, burstiness = args.burstiness, seed = args.seed }
end
if not arrival then arrival = rate_arrival(args.request_rate) end

if use_sim and target.sim_engine then
  local e = target.sim_engine
  -- max_model_len：没给 --sim-max-model-len 时是 32768 和 KV 缓存大小中较小的那个；更长的请求得到 vLLM 式的 400。
  say("Target: built-in simulator at %s (step engine x%d, preset %s: %d KV blocks of %d, %d seqs and %d tokens per step, max_model_len %d)",
      target.base_url, e.data_parallel, e.preset, e.num_blocks, e.block_size, e.max_num_seqs, e.max_num_batched_tokens,
      e.max_model_len)
elseif use_sim then
  local ttft, itl = args.sim_ttft_ms or 50, args.sim_itl_ms or 10
  say("Target: built-in simulator at %s (fixed engine: TTFT %s ms, ITL %s ms)", target.base_url, ttft, itl)
else
  say("Target: %s%s (backend %s)", target.base_url, target.endpoint, args.backend)
end
local rate_text = replay and string.format("trace timestamps x %s", args.trace_time_scale)
  or args.ramp_up_strategy and string.format("ramp-up (%s) from %s to %s", args.ramp_up_strategy,
    args.ramp_up_start_rps, args.ramp_up_end_rps)
  or (args.request_rate == math.huge and "inf" or tostring(args.request_rate))
say("Traffic request rate: %s", rate_text)
if not replay then
  say("Burstiness factor: %s (%s)", args.burstiness, t(args.burstiness == 1 and "Poisson process" or "Gamma distribution"))
end
say("Maximum request concurrency: %s", args.max_concurrency and tostring(args.max_concurrency) or t("None"))


-- 运行 Run ------------------------------------------------------------------------
-- 一次运行：发送、打印、保存、画图。--num-runs N 时重复 N 次，文件名加 -run1、-run2 ……
-- One run: send, print, save, plot. With --num-runs N it repeats, files named -run1, -run2, ...
local point_tag = nil   -- 扫描点的文件名后缀 the sweep point's file-name suffix
local function suffixed(file, i)
  if point_tag and args.result_filename then file = (file:gsub("%.json$", "")) .. point_tag .. ".json" end
  if args.num_runs <= 1 then return file end
  return (file:gsub("%.json$", "")) .. "-run" .. i .. ".json"
end
-- 结果文件里附上提示长度的核对结果（--verify-prompt-lengths）。
local function with_length_check(meta)
  if length_check then
    meta = meta or {}
    meta.prompt_length_check = length_check
  end
  return meta
end
-- 多轮对话 Multi-turn（--multi-turn）----------------------------------------------
-- --num-prompts 段对话，--multi-turn-concurrency 个虚拟用户（mb.users）。每一轮：用户说 --per-turn-input-len
-- 个 token 的新内容，连同之前各轮的问答（服务器真实的回答）一起发出，等回答到齐、想 --multi-turn-delay-ms 毫秒，
-- 再发下一轮。提示越来越长，服务器的前缀缓存能复用之前各轮算过的部分。
-- --num-prompts conversations by --multi-turn-concurrency virtual users; each turn sends the
-- whole history (the server's real answers) plus --per-turn-input-len new tokens.
local function multi_turn_run()
  if name ~= "random" and name ~= "sharegpt" then
    error("moonbench bench: --multi-turn takes --dataset-name random (made-up turns) or sharegpt (each "
      .. "conversation's own turns); got " .. name, 0)
  end
  -- ShareGPT：每段对话自己的各轮（历史用数据集里记录的回答），按顺序发送。
  -- ShareGPT: each conversation's own turns in order, its recorded answers as history.
  local convs
  if name == "sharegpt" then
    if not is_chat then
      error("moonbench bench: --multi-turn with sharegpt sends chat messages; use a chat backend "
        .. "(--backend openai-chat)", 0)
    end
    local all = mb.dataset.sharegpt{ ignore_eos = ignore_eos, path = dataset_path(), tokenizer = tok,
      n = math.max(args.num_prompts, 1), output_len = args.sharegpt_output_len, seed = args.seed,
      oversample = not args.no_oversample, all_turns = true }
    convs = {}
    for i = 1, #all do
      local q = all[i]
      if #q.messages == 1 then convs[#convs + 1] = {} end
      local c = convs[#convs]
      if not args.multi_turn_max_turns or #c < args.multi_turn_max_turns then c[#c + 1] = q end
    end
  end
  local lo = args.multi_turn_min_turns or args.multi_turn_num_turns
  local hi = args.multi_turn_max_turns or (args.multi_turn_min_turns and lo) or args.multi_turn_num_turns
  if (args.multi_turn_min_turns == nil) ~= (args.multi_turn_max_turns == nil) then
    error("moonbench bench: give --multi-turn-min-turns and --multi-turn-max-turns together", 0)
  end
  if lo < 1 or hi < lo then
    error(string.format("moonbench bench: turns must be >= 1 and min <= max (got %d..%d)", lo, hi), 0)
  end
  local per_turn = args.per_turn_input_len or args.random_input_len
  local conversations = convs and #convs or math.max(args.num_prompts, 1)
  local users = math.min(args.multi_turn_concurrency or args.max_concurrency or conversations, conversations)
  if users < 1 then error("moonbench bench: --multi-turn-concurrency must be at least 1", 0) end
  local delay = (args.multi_turn_delay_ms or 0) / 1000
  -- 每段对话的轮数预先用 --seed 抽好，结果可复现。Turn counts drawn up front from --seed.
  mb.rand.seed(args.seed)
  local turns = {}
  for i = 1, conversations do turns[i] = lo + math.floor(mb.rand.uniform(0, hi - lo + 1)) end
  local started = 0
  if convs then
    local n = 0
    for _, c in ipairs(convs) do n = n + #c end
    say("Multi-turn: %d ShareGPT conversations, %d turns in all, %d at a time", conversations, n, users)
  else
    say("Multi-turn: %d conversations of %d-%d turns, %d at a time, %d new tokens and %d answer tokens a turn",
        conversations, lo, hi, users, per_turn, args.random_output_len)
  end
  return mb.users{
    target = target, count = users, iterations = math.ceil(conversations / users), seed = args.seed,
    slo = args.goodput, percentiles = percentiles, metrics = metrics, progress = not args.disable_tqdm,
    records_file = args.save_records, ready_timeout = args.ready_check_timeout_sec, grace = args.grace_period,
    label = args.label, steady_state = args.steady_state, keep_text = args.save_detailed,
    bounded = args.bounded,
    server_metrics = (not args.no_server_metrics) and args.server_metrics_interval or false,
    scenario = function(u)
      if started >= conversations then return end
      started = started + 1
      if convs then
        local c = convs[started]
        for turn, q in ipairs(c) do
          local r = u:chat(q)
          if not r.success then return end
          if delay > 0 and turn < #c then u:sleep(delay) end
        end
        return
      end
      local history, text = {}, ""
      for turn = 1, turns[started] do
        local said = u:prompt(per_turn)
        local r
        if is_chat then
          history[#history + 1] = { role = "user", content = said }
          r = u:chat{ messages = history, max_tokens = args.random_output_len }
          if not r.success then return end   -- 失败已记录 / the failure is a record
          history[#history + 1] = { role = "assistant", content = r.text }
        else
          text = text .. said
          r = u:complete{ prompt = text, max_tokens = args.random_output_len }
          if not r.success then return end
          text = text .. r.text
        end
        if delay > 0 and turn < turns[started] then u:sleep(delay) end
      end
    end,
  }
end

local function one_run(run_i)
if args.num_runs > 1 then
  say("== run %d of %d ==", run_i, args.num_runs)
end
local res = args.multi_turn and multi_turn_run() or mb.run{
  target = target,
  requests = requests,
  arrival = arrival,
  num_requests = (args._given.num_prompts or not args.duration) and send_n or nil,
  duration = args.duration,
  max_concurrency = args.max_concurrency,
  warmup = args.num_warmups,
  slo = args.goodput,
  percentiles = percentiles,
  metrics = metrics,
  progress = not args.disable_tqdm,
  records_file = args.save_records,
  ready_timeout = args.ready_check_timeout_sec,
  grace = args.grace_period,
  label = args.label,
  -- 回答的文字只在 --save-detailed 时保留（generated_texts），否则只留时间，省内存。
  -- Answer texts are kept only for --save-detailed (generated_texts), to save memory.
  keep_text = args.save_detailed,
  -- 服务器自身的指标（运行中/排队请求数、KV cache 占用、前缀缓存命中率）。
  server_metrics = (not args.no_server_metrics) and args.server_metrics_interval or false,
  profile = args.profile,
  profile_batch_threshold = args.profile_batch_threshold,
  profile_duration = args._given.profile_duration and args.profile_duration or nil,
  reset_prefix_cache = args.reset_prefix_cache,
  steady_state = args.steady_state,
  bounded = args.bounded,
  probe_rate = args.probe_request_rate,
}

res:print{ lang = args.lang }

-- 保存结果 Save -------------------------------------------------------------------
local path
if args.save_result or args.save_detailed or args.append_result or args.save_pytorch_format then
  path = res:save(suffixed(args.result_filename or res:default_filename(), run_i), {
    dir = args.result_dir,
    detailed = args.save_detailed,
    append = args.append_result,
    metadata = with_length_check(argparse.pairs_of(args.metadata, "--metadata")),
  })
  say("Result saved to %s", path)
end
if args.save_pytorch_format or (mb.env("SAVE_TO_PYTORCH_BENCHMARK_FORMAT", "") ~= "") then
  -- vLLM 的 PyTorch 基准格式：每个指标一条记录；记录里附带本次的全部参数（API 密钥除外）。
  local recorded_args = {}
  for k, v in pairs(args) do
    if v == math.huge then v = "inf" end  -- vLLM's InfEncoder writes infinity as "inf"
    if k:sub(1, 1) ~= "_" and k ~= "api_key" then recorded_args[k] = v end
  end
  -- path 已经包含 --result-dir；只有没保存结果文件时才需要再加目录。
  -- `path` already includes --result-dir; only without it does the directory apply.
  local pt_dir = nil
  if not path then pt_dir = args.result_dir end
  local pt = res:save_pytorch((path or suffixed(res:default_filename(), run_i)):gsub("%.json$", "") .. ".pytorch.json",
    { args = recorded_args, dir = pt_dir })
  say("PyTorch-format records saved to %s", pt)
end

-- 图：与 vLLM 相同，放在结果文件旁边（没保存结果时用默认文件名）。
-- Plots go beside the result file (vLLM's naming), saved or not.
if args.plot_timeline or args.plot_dataset_stats then
  local base = path
  if not base then
    base = suffixed(args.result_filename or res:default_filename(), run_i)
    if args.result_dir then base = args.result_dir .. "/" .. base end
  end
  base = base:gsub("%.json$", "")
  if args.plot_timeline then
    say("Timeline plot saved to %s", res:plot_timeline(base .. ".timeline.html", { itl_thresholds = itl_thresholds }))
  end
  if args.plot_dataset_stats then
    say("Dataset statistics saved to %s", res:plot_dataset_stats(base .. ".dataset.html"))
  end
end
return res, path
end

local res, path
local summaries, paths = {}, {}
local sweep_rows = {}
for k, pt in ipairs(points) do
  if sweeping then
    args.max_concurrency = pt.conc
    if pt.rate then
      args.request_rate = pt.rate
      arrival = rate_arrival(pt.rate)
    end
    if pt.n then send_n = pt.n end
    point_tag = (pt.conc and ("-c" .. pt.conc) or "") .. (pt.rate and ("-r" .. (pt.rate == math.huge and "inf"
      or tostring(pt.rate))) or "")
    say("== sweep point %d of %d: max concurrency %s, request rate %s, %d requests ==", k, #points,
      pt.conc and tostring(pt.conc) or t("None"), pt.rate == math.huge and "inf" or tostring(pt.rate or args.request_rate),
      send_n)
    summaries, paths = {}, {}
  end
  for run_i = 1, args.num_runs do
    res, path = one_run(run_i)
    summaries[run_i] = res:summary()
    paths[run_i] = path
    if res.partial or res.stopped then break end
  end
  if sweeping then
    local sm = summaries[#summaries]
    sweep_rows[#sweep_rows + 1] = { max_concurrency = pt.conc, request_rate = args.request_rate == math.huge and "inf"
      or args.request_rate, num_prompts = send_n, result = paths[#paths], completed = sm.completed,
      failed = sm.failed, request_throughput = sm.request_throughput, output_throughput = sm.output_throughput,
      mean_ttft_ms = sm.mean_ttft_ms, mean_tpot_ms = sm.mean_tpot_ms, mean_e2el_ms = sm.mean_e2el_ms }
    if res.partial or res.stopped then break end
  end
end
-- 扫描结果对比表。The sweep's points side by side.
if sweeping then
  local function f(v) return type(v) == "number" and string.format("%.2f", v) or "-" end
  print(string.rep("=", 22) .. " " .. t("Sweep") .. " " .. string.rep("=", 22))
  print(string.format("%-6s %-6s %7s %9s %11s %10s %10s", t("conc"), t("rate"), t("ok"), "req/s", "out tok/s",
    "TTFT ms", "TPOT ms"))
  for _, row in ipairs(sweep_rows) do
    print(string.format("%-6s %-6s %7d %9s %11s %10s %10s", tostring(row.max_concurrency or "-"),
      tostring(row.request_rate), row.completed, f(row.request_throughput), f(row.output_throughput),
      f(row.mean_ttft_ms), f(row.mean_tpot_ms)))
  end
  print(string.rep("=", 51))
  if sweep_rows[1] and sweep_rows[1].result then
    local out = (sweep_rows[1].result:gsub("%.json$", "")) .. ".sweep.json"
    local fh = assert(io.open(out, "w"))
    fh:write(mb.json.encode({ points = sweep_rows }))
    fh:close()
    say("Sweep summary saved to %s", out)
  end
end

-- 多次运行的汇总：每个指标的平均值、标准差、最小、最大与变异系数（CV = std / mean）。
-- Across runs: mean, std, min, max and coefficient of variation of each metric.
if #summaries > 1 then
  local keys = { "request_throughput", "output_throughput", "total_token_throughput" }
  for _, m in ipairs(metrics) do
    for _, st in ipairs({ "mean", "median" }) do keys[#keys + 1] = st .. "_" .. m .. "_ms" end
    for _, p in ipairs(percentiles) do
      keys[#keys + 1] = "p" .. (p == math.floor(p) and string.format("%d", p) or tostring(p)) .. "_" .. m .. "_ms"
    end
  end
  local across = {}
  print(string.rep("=", 16) .. " " .. t("Across runs") .. " " .. string.rep("=", 16))
  print(string.format("%-28s %10s %10s %10s %10s %7s", t("metric"), "mean", "std", "min", "max", "CV %"))
  for _, k in ipairs(keys) do
    local vals = {}
    for _, sm in ipairs(summaries) do
      if type(sm[k]) == "number" then vals[#vals + 1] = sm[k] end
    end
    if #vals == #summaries then
      local sum, lo, hi = 0, math.huge, -math.huge
      for _, v in ipairs(vals) do sum = sum + v; lo = math.min(lo, v); hi = math.max(hi, v) end
      local mean = sum / #vals
      local var = 0
      for _, v in ipairs(vals) do var = var + (v - mean) ^ 2 end
      local std = math.sqrt(var / (#vals - 1))   -- 样本标准差 sample std (n - 1)
      local cv = mean ~= 0 and std / mean * 100 or 0
      across[k] = { mean = mean, std = std, min = lo, max = hi, cv_percent = cv, values = vals }
      print(string.format("%-28s %10.2f %10.2f %10.2f %10.2f %7.2f", k, mean, std, lo, hi, cv))
    end
  end
  print(string.rep("=", 45))
  if paths[1] then
    local out = (paths[1]:gsub("%-run1%.json$", "")) .. ".runs.json"
    local f = assert(io.open(out, "w"))
    f:write(mb.json.encode({ num_runs = #summaries, results = paths, metrics = across }))
    f:close()
    say("Summary of the runs saved to %s", out)
  end
end
local s = res:summary()
if s.completed == 0 then
  local first
  for _, r in ipairs(res:records()) do
    if r.error then first = r.error break end
  end
  error("moonbench bench: no request succeeded" .. (first and (" (first error: " .. first .. ")") or ""), 0)
end

-- 作为 mb.script 调用时（例如参数扫描），把结果对象和结果文件路径交给调用者。
return res, path
