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

local spec = {
  prog = "moonbench bench",
  description = "Benchmark an LLM server the way vLLM's benchmark_serving.py does.\n"
    .. "With no --base-url/--host/--port, the built-in simulated server is used.",
  description_zh = "像 vLLM 的 benchmark_serving.py 一样测试 LLM 推理服务。\n"
    .. "不指定 --base-url/--host/--port 时，使用内置的模拟服务器。",
  flags = {
    { group = "Target", group_zh = "目标服务器" },
    { "--backend", default = "vllm", choices = { "vllm", "openai", "openai-chat" },
      help = "server API: vllm/openai = /v1/completions, openai-chat = /v1/chat/completions",
      help_zh = "服务器接口：vllm/openai 为文本补全，openai-chat 为对话" },
    { "--base-url", help = "server URL, e.g. http://127.0.0.1:8000", help_zh = "服务器地址，如 http://127.0.0.1:8000" },
    { "--host", help = "server host (used when --base-url is not given)", help_zh = "服务器主机名（未给 --base-url 时）" },
    { "--port", type = "int", help = "server port (used when --base-url is not given)", help_zh = "服务器端口" },
    { "--endpoint", help = "API path (default: /v1/completions, or /v1/chat/completions for openai-chat)",
      help_zh = "接口路径（默认随 backend 而定）" },
    { "--model", help = "model name sent in requests (default: the server's first model)",
      help_zh = "请求里的模型名（默认取服务器的第一个模型）" },
    { "--served-model-name", help = "model name for the payload if different from --model",
      help_zh = "请求里使用的模型名（若与 --model 不同）" },
    { "--tokenizer", help = "tokenizer.json, model directory, HF id in the local cache, or 'words' (default: --model)",
      help_zh = "分词器：tokenizer.json、模型目录、本地 HF 缓存中的模型名，或 words（默认同 --model）" },
    { "--api-key", help = "bearer token (default: $OPENAI_API_KEY); never saved", help_zh = "API 密钥（默认读 OPENAI_API_KEY；不会写入结果）" },
    { "--header", type = "list", metavar = "K=V", help = "extra HTTP headers", help_zh = "额外的 HTTP 头" },
    { "--request-timeout", type = "number", default = 600, help = "per-request timeout in seconds",
      help_zh = "单个请求的超时（秒）" },
    { "--ready-check-timeout-sec", type = "number", default = 60,
      help = "wait this long for the server to answer before sending (0 = skip)",
      help_zh = "发送前等待服务器就绪的最长时间（0 = 不检查）" },

    { group = "Dataset", group_zh = "数据集" },
    { "--dataset-name", default = "random",
      choices = { "random", "sharegpt", "sonnet", "burstgpt", "custom", "prefix_repetition", "mooncake", "timed_trace" },
      help = "prompt source; mooncake (alias timed_trace) replays a trace at its timestamps",
      help_zh = "提示词来源；mooncake（同 timed_trace）按轨迹时间戳回放" },
    { "--dataset-path", help = "dataset file (ShareGPT JSON, BurstGPT CSV, custom or trace JSONL; .gz allowed)",
      help_zh = "数据文件（ShareGPT JSON、BurstGPT CSV、自定义或轨迹 JSONL，可为 .gz）" },
    { "--num-prompts", type = "int", default = 1000, help = "number of requests", help_zh = "请求数量" },
    { "--seed", type = "int", default = 0, help = "random seed (prompts and arrival times)", help_zh = "随机种子" },
    { "--random-input-len", type = "int", default = 1024, help = "input tokens per prompt", help_zh = "每个提示词的输入 token 数" },
    { "--random-output-len", type = "int", default = 128, help = "output tokens per request", help_zh = "每个请求的输出 token 数" },
    { "--random-range-ratio", type = "number", default = 0.0, help = "lengths vary within ±ratio",
      help_zh = "长度在 ±ratio 范围内随机" },
    { "--random-prefix-len", type = "int", default = 0, help = "tokens of a prefix shared by every prompt",
      help_zh = "所有提示词共享的前缀 token 数" },
    { "--input-len", type = "int", help = "alias of --random-input-len", help_zh = "同 --random-input-len" },
    { "--output-len", type = "int", help = "output tokens for the random, sharegpt, custom and prefix_repetition datasets",
      help_zh = "random、sharegpt、custom、prefix_repetition 数据集的输出 token 数" },
    { "--sharegpt-output-len", type = "int", help = "fixed output length instead of each conversation's answer length",
      help_zh = "固定输出长度（代替参考回答的长度）" },
    { "--sonnet-input-len", type = "int", default = 550, help = "sonnet: input tokens", help_zh = "sonnet：输入 token 数" },
    { "--sonnet-output-len", type = "int", default = 150, help = "sonnet: output tokens", help_zh = "sonnet：输出 token 数" },
    { "--sonnet-prefix-len", type = "int", default = 200, help = "sonnet: shared prefix tokens", help_zh = "sonnet：共享前缀 token 数" },
    { "--custom-output-len", type = "int", default = 256, help = "custom: output tokens (-1: each line's output_tokens)",
      help_zh = "custom：输出 token 数（-1 表示用每行的 output_tokens）" },
    { "--disable-shuffle", type = "bool", help = "custom: keep the file's order", help_zh = "custom：保持文件中的顺序" },
    { "--no-oversample", type = "bool", help = "sharegpt: do not repeat samples to reach --num-prompts",
      help_zh = "sharegpt：有效样本不足时不重复采样" },
    { "--prefix-repetition-prefix-len", type = "int", default = 256, help = "prefix tokens", help_zh = "前缀 token 数" },
    { "--prefix-repetition-suffix-len", type = "int", default = 256, help = "suffix tokens", help_zh = "后缀 token 数" },
    { "--prefix-repetition-num-prefixes", type = "int", default = 10, help = "distinct prefixes", help_zh = "不同前缀的个数" },
    { "--prefix-repetition-output-len", type = "int", default = 128, help = "output tokens", help_zh = "输出 token 数" },
    { "--burstgpt-model", default = "GPT-4", help = "burstgpt: keep rows of this Model (empty: all)",
      help_zh = "burstgpt：只保留该 Model 的行（空 = 全部）" },
    { "--use-trace-timestamps", type = "bool",
      help = "burstgpt: replay rows at their timestamps (mooncake always does unless --request-rate is given)",
      help_zh = "burstgpt：按原始时间戳回放（mooncake 默认如此，除非给出 --request-rate）" },
    { "--trace-time-scale", type = "number", default = 1.0, help = "multiply trace timestamps (0.5 = twice as fast)",
      help_zh = "轨迹时间戳乘以该系数（0.5 = 两倍速）" },
    { "--timed-trace-sec-multiplier", type = "number", help = "alias of --trace-time-scale (vLLM's name)" },
    { "--trace-block-size", type = "int", default = 512, help = "mooncake: tokens per hash block", help_zh = "mooncake：每个 hash 块的 token 数" },
    { "--apply-chat-template", type = "bool",
      help = "render prompts with the model's chat template before sending them to a completions endpoint",
      help_zh = "向文本补全接口发送前，先用模型的对话模板渲染提示词" },
    { "--prompt-token-ids", type = "bool", help = "send token ids instead of text (completions servers that accept them)",
      help_zh = "发送 token id 而不是文本（适用于接受 token id 的补全接口）" },

    { group = "Traffic", group_zh = "流量" },
    { "--request-rate", type = "number", default = math.huge,
      help = "requests per second; inf sends all at once", help_zh = "每秒请求数；inf 表示一次全部发出" },
    { "--burstiness", type = "number", default = 1.0,
      help = "gamma shape of arrivals: 1 = Poisson, <1 burstier, >1 more even",
      help_zh = "到达间隔的 gamma 形状参数：1 = 泊松，<1 更突发，>1 更均匀" },
    { "--max-concurrency", type = "int", help = "at most this many requests in flight", help_zh = "同时在途的最大请求数（并发上限）" },
    { "--duration", type = "number", help = "stop sending after this many seconds", help_zh = "发送多少秒后停止" },
    { "--num-warmups", type = "int", default = 0, help = "unmeasured warm-up requests", help_zh = "不计入统计的预热请求数" },
    { "--grace-period", type = "number", default = 5,
      help = "after Ctrl-C, seconds to let requests in flight finish", help_zh = "按 Ctrl-C 后等待在途请求完成的秒数" },

    { group = "Request", group_zh = "请求参数" },
    { "--ignore-eos", type = "bool", help = "ask the server to ignore EOS (default on for the random dataset; --no-ignore-eos turns it off)",
      help_zh = "让服务器忽略结束符，输出满 max_tokens（random 数据集默认开启）" },
    { "--temperature", type = "number", help = "sampling temperature (default 0.0, as vLLM's benchmark)", help_zh = "采样温度（默认 0.0）" },
    { "--top-p", type = "number", help = "top-p sampling", help_zh = "top-p 采样" },
    { "--top-k", type = "int", help = "top-k sampling", help_zh = "top-k 采样" },
    { "--min-p", type = "number", help = "min-p sampling", help_zh = "min-p 采样" },
    { "--extra-body", help = "JSON object merged into every request body", help_zh = "合并进每个请求体的 JSON 对象" },
    { "--disable-streaming", type = "bool", help = "ask for whole JSON answers instead of SSE streams (no TTFT/ITL)",
      help_zh = "不使用流式输出（此时没有 TTFT/ITL）" },
    { "--continuous-usage-stats", type = "bool",
      help = "ask vLLM for token counts in every chunk (exact ITL when chunks carry several tokens)",
      help_zh = "让 vLLM 在每个 chunk 里报告 token 数（多 token chunk 时 ITL 更准）" },

    { group = "Metrics", group_zh = "指标" },
    { "--percentile-metrics", default = "ttft,tpot,itl", help = "metrics to report: ttft,tpot,itl,e2el",
      help_zh = "要报告的指标" },
    { "--metric-percentiles", default = "99", help = "percentiles to report, e.g. 50,90,99", help_zh = "要报告的分位数" },
    { "--goodput", type = "list", metavar = "KEY:MS", help = "SLOs for goodput, e.g. ttft:500 tpot:50",
      help_zh = "goodput 的 SLO，例如 ttft:500 tpot:50" },

    { group = "Output", group_zh = "输出" },
    { "--save-result", type = "bool", help = "save the result JSON", help_zh = "保存结果 JSON" },
    { "--save-detailed", type = "bool", help = "also save per-request arrays (implies --save-result)",
      help_zh = "同时保存每个请求的明细" },
    { "--append-result", type = "bool", help = "append to the result file as a new line", help_zh = "追加到结果文件" },
    { "--result-dir", help = "directory of the result file", help_zh = "结果文件目录" },
    { "--result-filename", help = "result file name (default: vLLM's pattern)", help_zh = "结果文件名" },
    { "--metadata", type = "list", metavar = "K=V", help = "extra KEY=VALUE pairs stored in the result",
      help_zh = "写入结果的额外 KEY=VALUE" },
    { "--label", help = "label of the run (file-name prefix; default: the backend)", help_zh = "运行标签" },
    { "--save-records", help = "stream every request's record to this JSONL file", help_zh = "把每个请求的记录实时写入此 JSONL 文件" },
    { "--disable-tqdm", type = "bool", help = "no progress bar", help_zh = "不显示进度条" },
    { "--lang", default = "en", choices = { "en", "zh" }, help = "language of the printed table", help_zh = "结果表的语言" },

    { group = "Built-in simulator (when no server is given)", group_zh = "内置模拟服务器（未指定服务器时）" },
    { "--sim-ttft-ms", type = "number", default = 50, help = "simulated time to first token", help_zh = "模拟的首 token 时间" },
    { "--sim-itl-ms", type = "number", default = 10, help = "simulated time between tokens", help_zh = "模拟的 token 间隔" },
    { "--sim-jitter", type = "number", default = 0, help = "relative jitter of simulated times (0.1 = ±10%)",
      help_zh = "模拟时间的相对抖动（0.1 = ±10%）" },
    { "--sim-tokens-per-chunk", type = "int", default = 1, help = "tokens packed in each SSE chunk",
      help_zh = "每个 SSE chunk 里打包的 token 数" },
    { "--sim-max-running", type = "int", help = "requests generated at once; others queue",
      help_zh = "同时生成的请求数上限，其余排队" },
    { "--sim-faults", default = "", help = "random faults, e.g. reset=0.01,http500=0.01",
      help_zh = "随机故障注入，例如 reset=0.01,http500=0.01" },
  },
}

local args = argparse.parse(spec, arg)
local zh = args.lang == "zh"
local function say(en, cn) print(zh and cn or en) end

-- 参数检查 Check the flags -------------------------------------------------------
if args.input_len then args.random_input_len = args.input_len end
if args.output_len then args.random_output_len = args.output_len end
if args.dataset_name == "timed_trace" then args.dataset_name = "mooncake" end
if args.timed_trace_sec_multiplier then args.trace_time_scale = args.timed_trace_sec_multiplier end
if args.output_len then
  args.sharegpt_output_len = args.output_len
  args.custom_output_len = args.output_len
  args.prefix_repetition_output_len = args.output_len
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
local percentiles = {}
for _, p in ipairs(argparse.split(args.metric_percentiles)) do
  local v = tonumber(p)
  if not v or v < 0 or v > 100 then
    error("moonbench bench: --metric-percentiles: '" .. p .. "' is not a percentile between 0 and 100", 0)
  end
  percentiles[#percentiles + 1] = v
end
local metrics = argparse.split(args.percentile_metrics)

-- 目标服务器 Target ---------------------------------------------------------------
local use_sim = args.base_url == nil and args.host == nil and args.port == nil
local body = {}
if args.extra_body then
  local ok, extra = pcall(mb.json.decode, args.extra_body)
  if not ok or type(extra) ~= "table" then
    error("moonbench bench: --extra-body must be a JSON object, e.g. '{\"top_k\": 20}'", 0)
  end
  for k, v in pairs(extra) do body[k] = v end
end
-- vLLM 的基准脚本在没给温度时会注入 temperature = 0.0（贪心解码），这里保持一致。
-- vLLM's benchmark sends temperature 0.0 when none is given; so do we.
body.temperature = args.temperature or body.temperature or 0.0
if args.top_p then body.top_p = args.top_p end
if args.top_k then body.top_k = args.top_k end
if args.min_p then body.min_p = args.min_p end
-- 合成的提示词（random、prefix_repetition、burstgpt、mooncake）默认 ignore_eos（vLLM 新版对 random 同样如此），
-- 这样每个请求都输出满指定的 token 数。Synthetic datasets ask for exact output lengths.
local synthetic = { random = true, prefix_repetition = true, burstgpt = true, mooncake = true }
local ignore_eos = args.ignore_eos
if not args._given.ignore_eos and synthetic[args.dataset_name] then ignore_eos = true end
if ignore_eos then body.ignore_eos = true end

local tokenizer_spec = args.tokenizer or args.model
if use_sim and not args.tokenizer then tokenizer_spec = "words" end
if not tokenizer_spec then
  error("moonbench bench: pass --tokenizer (a tokenizer.json or model directory) or --model, "
    .. "or --tokenizer words to count one token per word", 0)
end
local tok = mb.tokenizer(tokenizer_spec)

local target = mb.target{
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
  stream = not args.disable_streaming,
  continuous_usage = args.continuous_usage_stats,
  body = body,
  tokenizer = tok,
  sim = use_sim and {
    ttft_ms = args.sim_ttft_ms, itl_ms = args.sim_itl_ms, jitter = args.sim_jitter,
    tokens_per_chunk = args.sim_tokens_per_chunk, max_running = args.sim_max_running,
    faults = args.sim_faults, seed = args.seed,
  } or nil,
}

-- 提示词 Prompts ------------------------------------------------------------------
local is_chat = args.backend == "openai-chat"
local function dataset_path()
  if not args.dataset_path then
    error("moonbench bench: --dataset-name " .. args.dataset_name .. " needs --dataset-path FILE", 0)
  end
  return args.dataset_path
end
local n = math.max(args.num_prompts, 1)
local requests
local name = args.dataset_name
if name == "random" then
  requests = mb.dataset.random{
    tokenizer = tok, n = n, input_len = args.random_input_len, output_len = args.random_output_len,
    range_ratio = args.random_range_ratio, prefix_len = args.random_prefix_len, seed = args.seed,
    token_ids = args.prompt_token_ids,
  }
elseif name == "sharegpt" then
  requests = mb.dataset.sharegpt{ path = dataset_path(), tokenizer = tok, n = n, output_len = args.sharegpt_output_len,
    seed = args.seed, oversample = not args.no_oversample }
elseif name == "sonnet" then
  -- 文本补全接口发送套用对话模板后的文本；对话接口发送原文（由服务器套模板），与 vLLM 相同。
  requests = mb.dataset.sonnet{ path = args.dataset_path, tokenizer = tok, n = n, input_len = args.sonnet_input_len,
    output_len = args.sonnet_output_len, prefix_len = args.sonnet_prefix_len, seed = args.seed, chat = is_chat }
elseif name == "burstgpt" then
  requests = mb.dataset.burstgpt{ path = dataset_path(), tokenizer = tok, n = n, seed = args.seed,
    model = args.burstgpt_model, use_timestamps = args.use_trace_timestamps, token_ids = args.prompt_token_ids }
elseif name == "custom" then
  requests = mb.dataset.custom{ path = dataset_path(), tokenizer = tok, n = n, output_len = args.custom_output_len,
    shuffle = not args.disable_shuffle, seed = args.seed }
elseif name == "prefix_repetition" then
  requests = mb.dataset.prefix_repetition{ tokenizer = tok, n = n, prefix_len = args.prefix_repetition_prefix_len,
    suffix_len = args.prefix_repetition_suffix_len, num_prefixes = args.prefix_repetition_num_prefixes,
    output_len = args.prefix_repetition_output_len, seed = args.seed, token_ids = args.prompt_token_ids }
elseif name == "mooncake" then
  requests = mb.dataset.mooncake{ path = dataset_path(), tokenizer = tok,
    n = args._given.num_prompts and n or nil, block_size = args.trace_block_size, seed = args.seed,
    token_ids = args.prompt_token_ids }
end
if args.apply_chat_template and not is_chat then
  requests = requests:apply_chat_template(tok)
end
if args.prompt_token_ids and (name == "sharegpt" or name == "custom" or name == "sonnet") then
  requests = requests:to_token_ids(tok)
end

-- 到达过程 Arrivals ---------------------------------------------------------------
-- 轨迹数据（mooncake；burstgpt 加 --use-trace-timestamps）按记录的时间戳发送，除非显式给了 --request-rate。
local arrival
local replay = requests:timestamps() ~= nil and not args._given.request_rate
if replay then
  arrival = mb.arrival.trace{ timestamps = requests, scale = args.trace_time_scale }
elseif args.request_rate == math.huge then
  arrival = mb.arrival.infinite()
else
  arrival = mb.arrival.poisson{ rate = args.request_rate, burstiness = args.burstiness, seed = args.seed }
end

if use_sim then
  say(string.format("Target: built-in simulator at %s (TTFT %s ms, ITL %s ms)", target.base_url, args.sim_ttft_ms, args.sim_itl_ms),
      string.format("目标：内置模拟服务器 %s（TTFT %s ms，ITL %s ms）", target.base_url, args.sim_ttft_ms, args.sim_itl_ms))
else
  say("Target: " .. target.base_url .. target.endpoint .. " (backend " .. args.backend .. ")",
      "目标：" .. target.base_url .. target.endpoint .. "（backend " .. args.backend .. "）")
end
local rate_text = replay and string.format("trace timestamps x %s", args.trace_time_scale)
  or (args.request_rate == math.huge and "inf" or tostring(args.request_rate))
say("Traffic request rate: " .. rate_text, "请求速率: " .. rate_text)
if not replay then
  say(string.format("Burstiness factor: %s (%s)", args.burstiness, args.burstiness == 1 and "Poisson process" or "Gamma distribution"),
      string.format("突发因子: %s（%s）", args.burstiness, args.burstiness == 1 and "泊松过程" or "Gamma 分布"))
end
say("Maximum request concurrency: " .. tostring(args.max_concurrency or "None"),
    "最大请求并发数: " .. tostring(args.max_concurrency or "无限制"))

-- 运行 Run ------------------------------------------------------------------------
local res = mb.run{
  target = target,
  requests = requests,
  arrival = arrival,
  num_requests = (args._given.num_prompts or not args.duration) and #requests or nil,
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
}

res:print{ lang = args.lang }

-- 保存结果 Save -------------------------------------------------------------------
if args.save_result or args.save_detailed or args.append_result then
  local path = res:save(args.result_filename, {
    dir = args.result_dir,
    detailed = args.save_detailed,
    append = args.append_result,
    metadata = argparse.pairs_of(args.metadata, "--metadata"),
  })
  say("Result saved to " .. path, "结果已保存到 " .. path)
end

local s = res:summary()
if s.completed == 0 then
  local first
  for _, r in ipairs(res:records()) do
    if r.error then first = r.error break end
  end
  error("moonbench bench: no request succeeded" .. (first and (" (first error: " .. first .. ")") or ""), 0)
end
