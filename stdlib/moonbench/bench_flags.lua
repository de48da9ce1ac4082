-- moonbench/bench_flags.lua —— `moonbench bench`（scripts/benchmark_serving.lua）接受的全部参数。
-- The flags of the vLLM-compatible benchmark, as data: the bench script parses its
-- command line with them, and the sweep (scripts/sweep.lua) checks a config's
-- `defaults:` keys against them. A copy of the bench script can add its own:
--   local spec = require "moonbench.bench_flags"
--   table.insert(spec.flags, { "--my-flag", type = "int", default = 1, help = "..." })

local spec = {
  prog = "moonbench bench",
  description = "Benchmark an LLM server the way vLLM's benchmark_serving.py does.\n"
    .. "With no --base-url/--host/--port, the built-in simulated server is used.",
  description_zh = "像 vLLM 的 benchmark_serving.py 一样测试 LLM 推理服务。\n"
    .. "不指定 --base-url/--host/--port 时，使用内置的模拟服务器。",
  flags = {
    { group = "Target", group_zh = "目标服务器" },
    { "--backend", default = "vllm",
      choices = { "vllm", "openai", "lmdeploy", "scalellm", "sglang-oai", "openai-chat", "vllm-chat",
                  "lmdeploy-chat", "sglang-oai-chat", "openai-responses", "openai-embeddings", "openai-embeddings-chat",
                  "openai-embeddings-clip", "openai-embeddings-vlm2vec", "openai-audio", "infinity-embeddings", "vllm-pooling", "vllm-rerank", "sglang", "tgi", "tensorrt-llm",
                  "llama.cpp", "deepspeed-mii" },
      help = "server API: vllm/openai/lmdeploy/scalellm/sglang-oai = /v1/completions; *-chat = "
        .. "/v1/chat/completions; openai-responses = /v1/responses (the Responses API's events); "
        .. "openai-audio = /v1/audio/transcriptions (or --endpoint /v1/audio/translations: the audio file as a "
        .. "multipart form, --dataset-name custom_audio; RTFx in the result); "
        .. "openai-embeddings = /v1/embeddings with input, openai-embeddings-chat with chat messages, "
        .. "openai-embeddings-clip / -vlm2vec the same as vLLM sends them to CLIP / VLM2Vec models (a message with "
        .. "images: an empty text / the image first and \"Represent the given image.\", every other request with "
        .. "its question), "
        .. "infinity-embeddings = Infinity's /embeddings; vllm-pooling = /pooling; vllm-rerank = /rerank (a query and "
        .. "its documents: --dataset-name random-rerank); sglang = SGLang's /generate; "
        .. "tgi = /generate_stream; tensorrt-llm = /v2/models/ensemble/generate_stream; "
        .. "llama.cpp = /completion; deepspeed-mii = /mii/{model}",
      help_zh = "服务器接口：vllm/openai 等为文本补全（/v1/completions），*-chat 为对话，openai-responses 为 Responses 接口，"
        .. "openai-audio 为语音转写 /v1/audio/transcriptions（或 --endpoint /v1/audio/translations；以 multipart 表单发送音频，"
        .. "配合 --dataset-name custom_audio；结果含 RTFx），"
        .. "openai-embeddings / openai-embeddings-chat / infinity-embeddings 为向量（-clip / -vlm2vec 按 vLLM 的方式"
        .. "为 CLIP / VLM2Vec 模型改写带图片的消息），vllm-pooling 为 /pooling，"
        .. "vllm-rerank 为重排序（/rerank，配合 --dataset-name random-rerank）；"
        .. "sglang、tgi、tensorrt-llm、llama.cpp、deepspeed-mii 为各自的原生接口" },
    { "--base-url", help = "server URL, e.g. http://127.0.0.1:8000", help_zh = "服务器地址，如 http://127.0.0.1:8000" },
    { "--host", help = "server host (used when --base-url is not given)", help_zh = "服务器主机名（未给 --base-url 时）" },
    { "--port", type = "int", help = "server port (used when --base-url is not given)", help_zh = "服务器端口" },
    { "--endpoint", help = "API path (default: depends on --backend; {model} stands for the model name)",
      help_zh = "接口路径（默认随 backend 而定）" },
    { "--model", help = "model name sent in requests (default: the server's first model)",
      help_zh = "请求里的模型名（默认取服务器的第一个模型）" },
    { "--served-model-name", help = "model name for the payload if different from --model",
      help_zh = "请求里使用的模型名（若与 --model 不同）" },
    { "--tokenizer", help = "tokenizer.json, model directory, GGUF model file (llama.cpp's), Hugging Face model id (from the local cache, else "
        .. "downloaded from the Hub: HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE), or 'words' (default: --model, else the "
        .. "model /v1/models reports; with the built-in simulator and no --model, words)",
      help_zh = "分词器：tokenizer.json、模型目录、GGUF 模型文件（llama.cpp 的）、Hugging Face 模型 id（先查本地缓存，没有则从 Hub 下载："
        .. "HF_ENDPOINT、HF_TOKEN、HF_HUB_OFFLINE），或 words（默认同 --model，否则用 /v1/models 报告的模型；"
        .. "内置模拟服务器且未给 --model 时为 words）" },
    { "--tokenizer-mode", default = "auto",
      help = "vLLM's tokenizer modes: auto, hf and slow all read the model's tokenizer.json (or GGUF file) with the "
        .. "Rust tokenizers library (there is no slow tokenizer here); mistral and deepseek_v32 (Python-only formats) "
        .. "are refused with how to get a tokenizer.json",
      help_zh = "vLLM 的分词器模式：auto、hf、slow 都读取模型的 tokenizer.json（或 GGUF 文件）（这里没有 slow 分词器）；"
        .. "mistral、deepseek_v32 是 Python 专有格式，会报错并说明如何拿到 tokenizer.json" },
    { "--trust-remote-code", type = "bool",
      help = "accepted for vLLM compatibility; moonbench runs no Python or model code, so it changes nothing",
      help_zh = "为兼容 vLLM 而接受；moonbench 不运行 Python 或模型代码，所以没有任何作用" },
    { "--skip-tokenizer-init", type = "bool",
      help = "load no tokenizer: prompt lengths are counted in words and output tokens come from the server's usage",
      help_zh = "不加载分词器：提示长度按词计数，输出 token 数取服务器报告的 usage" },
    { "--api-key", help = "bearer token (default: $OPENAI_API_KEY); never saved", help_zh = "API 密钥（默认读 OPENAI_API_KEY；不会写入结果）" },
    { "--header", type = "list", metavar = "K=V", help = "extra HTTP headers", help_zh = "额外的 HTTP 头" },
    { "--request-id-prefix",
      help = "prefix of each request's x-request-id header (the request index follows); default: a random UUID "
        .. "per request, which every server accepts (llama-cpp-python rejects any other id)",
      help_zh = "每个请求 x-request-id 头的前缀（后接请求序号），方便在服务器日志里找到它；"
        .. "默认每个请求用随机 UUID（llama-cpp-python 等服务器只接受 UUID）" },
    { "--request-timeout", type = "number", default = 600,
      help = "per-request timeout in seconds, > 0 (connect, TLS, headers and the whole answer)",
      help_zh = "单个请求的超时（秒，必须 > 0；包括连接、TLS 握手、响应头和整个回答）" },
    { "--insecure", type = "bool",
      help = "https: accept any server certificate (prints a warning; vLLM's flag)",
      help_zh = "https：不校验服务器证书（会打印警告；同 vLLM 的 --insecure）" },
    { "--ca-cert", metavar = "FILE",
      help = "https: also trust the CA certificates in this PEM file (the system store, SSL_CERT_FILE "
        .. "and SSL_CERT_DIR are always read)",
      help_zh = "https：额外信任此 PEM 文件中的 CA 证书（系统证书库、SSL_CERT_FILE、SSL_CERT_DIR 总会读取）" },
    { "--ready-check-timeout-sec", type = "number", default = 60,
      help = "wait this long for the server to answer before sending (0 = skip)",
      help_zh = "发送前等待服务器就绪的最长时间（0 = 不检查）" },

    { group = "Dataset", group_zh = "数据集" },
    { "--dataset-name", default = "random",
      choices = { "random", "random-rerank", "sharegpt", "sonnet", "burstgpt", "custom", "prefix_repetition",
                  "spec_bench", "mooncake", "timed_trace", "hf", "random-mm", "custom_image", "custom_audio" },
      help = "prompt source; random-rerank makes one query and --num-prompts documents for --backend vllm-rerank "
        .. "(--random-input-len tokens per query-document pair, --random-batch-size documents per request); "
        .. "mooncake replays a Mooncake trace (ms timestamps, 512-token blocks) and timed_trace "
        .. "vLLM's timed-trace format (--timed-trace-* options), both at their timestamps; hf reads a Hugging Face "
        .. "dataset vLLM knows by id (--dataset-path ID, a local folder or file; --hf-*); random-mm is random with "
        .. "synthetic images (--random-mm-*, chat backends); custom_image is JSONL of \"prompt\" with \"image_files\" "
        .. "or of \"content\" parts (chat backends); custom_audio is JSONL of {\"prompt\", \"audio\": \"clip.wav\"} "
        .. "(WAV or FLAC) for --backend openai-audio, or openai-chat (an input_audio part)",
      help_zh = "提示词来源；random-rerank 生成一个查询和 --num-prompts 个文档，用于 --backend vllm-rerank；"
        .. "mooncake 回放 Mooncake 轨迹（毫秒时间戳，512 token 一块），timed_trace 为 vLLM 的"
        .. "时间轨迹格式（见 --timed-trace-*），都按时间戳发送；hf 读取 vLLM 认识的 Hugging Face 数据集"
        .. "（--dataset-path 为数据集 id、本地文件夹或文件；见 --hf-*）；random-mm 为带合成图片的 random"
        .. "（见 --random-mm-*，仅对话接口）；custom_image 为 JSONL，每行 \"prompt\" 加 \"image_files\"，"
        .. "或 \"content\" 片段列表（仅对话接口）；custom_audio 为 JSONL，每行 {\"prompt\", \"audio\": \"clip.wav\"}"
        .. "（WAV 或 FLAC），用于 --backend openai-audio，或 openai-chat（input_audio 片段）" },
    { "--dataset-path", help = "dataset file (ShareGPT JSON, BurstGPT CSV, custom or trace JSONL; .gz allowed); "
        .. "hf: a Hub dataset id (local cache first, else downloaded), a folder or a Parquet/JSONL/JSON file",
      help_zh = "数据文件（ShareGPT JSON、BurstGPT CSV、自定义或轨迹 JSONL，可为 .gz）；"
        .. "hf：Hub 数据集 id（先查本地缓存，否则下载）、文件夹或 Parquet/JSONL/JSON 文件" },
    { "--preset", choices = { "seed-single" },
      help = "seed-single: the seed toolkit's single run (main.py single): 100 prompts, concurrency 10, 256/256 "
        .. "tokens, saved into a new run folder results/{model_short}_{YYYYmmdd_HHMMSS}/; flags given explicitly win",
      help_zh = "seed-single：原工具包的单次压测（main.py single）：100 个请求、并发 10、输入/输出各 256 个 token，"
        .. "结果存进新的结果目录 results/{模型短名}_{年月日_时分秒}/；明确给出的参数优先" },
    { "--num-prompts", type = "int", default = 1000, help = "number of requests", help_zh = "请求数量" },
    { "--seed", type = "int", default = 0, help = "random seed (prompts and arrival times)", help_zh = "随机种子" },
    { "--random-input-len", type = "int", default = 1024, help = "input tokens per prompt", help_zh = "每个提示词的输入 token 数" },
    { "--random-output-len", type = "int", default = 128, help = "output tokens per request", help_zh = "每个请求的输出 token 数" },
    { "--random-range-ratio", default = "0.0", metavar = "R",
      help = "lengths vary within ±R (0 <= R < 1); or JSON '{\"input\": R1, \"output\": R2}' for separate ratios, as vLLM",
      help_zh = "长度在 ±R 范围内随机（0 <= R < 1）；或用 JSON '{\"input\": R1, \"output\": R2}' 分别给出输入和输出的比例（与 vLLM 相同）" },
    { "--random-prefix-len", type = "int", default = 0, help = "tokens of a prefix shared by every prompt",
      help_zh = "所有提示词共享的前缀 token 数" },
    { "--input-len", type = "int", help = "input tokens for the random and sonnet datasets (sets --random-input-len "
        .. "and --sonnet-input-len)", help_zh = "random 与 sonnet 数据集的输入 token 数" },
    { "--output-len", type = "int", help = "output tokens for every dataset that has an output length (random, "
        .. "sonnet, sharegpt, custom, spec_bench, prefix_repetition, hf)",
      help_zh = "所有带输出长度的数据集的输出 token 数（random、sonnet、sharegpt、custom、spec_bench、prefix_repetition、hf）" },
    { "--random-batch-size", type = "int", default = 1,
      help = "random: prompts per request, sent as one list to a pooling backend (embeddings, vllm-pooling); "
        .. "random-rerank: documents per request",
      help_zh = "random：每个请求包含的提示数，作为一个列表发给池化类后端（embeddings、vllm-pooling）；"
        .. "random-rerank：每个请求的文档数" },
    { "--sharegpt-output-len", type = "int", help = "fixed output length instead of each conversation's answer length",
      help_zh = "固定输出长度（代替参考回答的长度）" },
    { "--sonnet-input-len", type = "int", default = 550, help = "sonnet: input tokens", help_zh = "sonnet：输入 token 数" },
    { "--sonnet-output-len", type = "int", default = 150, help = "sonnet: output tokens", help_zh = "sonnet：输出 token 数" },
    { "--sonnet-prefix-len", type = "int", default = 200, help = "sonnet: shared prefix tokens", help_zh = "sonnet：共享前缀 token 数" },
    { "--custom-output-len", type = "int", default = 256,
      help = "custom, custom_image and custom_audio: output tokens (-1: custom: each line's output_tokens; the others: "
        .. "the server's)",
      help_zh = "custom、custom_image 与 custom_audio：输出 token 数（-1：custom 用每行的 output_tokens；其余由服务器决定）" },
    { "--custom-ensure-client-side-data", type = "bool",
      help = "custom_image: read every local and http(s) image here and send it as a data URL (default: local "
        .. "files go as file:// URLs the server reads from its own disk, e.g. vLLM with --allowed-local-media-path)",
      help_zh = "custom_image：在客户端读取本地与 http(s) 图片，编码成 data URL 发送（默认本地文件以 file:// 地址发送，"
        .. "由服务器从自己的磁盘读取，例如 vLLM 需 --allowed-local-media-path）" },
    { "--no-reranker", type = "bool",
      help = "random-rerank: the model is an embeddings model, not a reranker: the query is one of each "
        .. "request's --random-batch-size texts and every text is --random-input-len tokens",
      help_zh = "random-rerank：模型是向量模型而不是重排序模型：查询算作每个请求的文本之一，每段文本 --random-input-len 个 token" },
    { "--skip-chat-template", type = "bool",
      help = "custom, spec_bench and hf: send each prompt as written; by default, as vLLM does, a completions backend "
        .. "gets it rendered with the tokenizer's chat template (when the tokenizer has one)",
      help_zh = "custom、spec_bench 与 hf：按原样发送提示；默认与 vLLM 相同，对文本补全接口先用分词器的对话模板渲染（分词器有模板时）" },
    { "--chat-template-kwargs", metavar = "JSON",
      help = "JSON object of template variables for prompts rendered on the client (--apply-chat-template, custom, "
        .. "spec_bench, sonnet), e.g. '{\"enable_thinking\": false}'",
      help_zh = "客户端渲染对话模板时的模板变量（JSON 对象），如 '{\"enable_thinking\": false}'" },
    { "--spec-bench-output-len", type = "int", default = 256, help = "spec_bench: output tokens per request",
      help_zh = "spec_bench：每个请求的输出 token 数" },
    { "--spec-bench-category", help = "spec_bench: keep only this category (default: all)",
      help_zh = "spec_bench：只保留该类别（默认全部）" },
    { "--asr-min-audio-len-sec", type = "number", default = 0.0,
      help = "hf speech datasets (librispeech_asr, voxpopuli, ...; --backend openai-audio): shortest clip kept (s)",
      help_zh = "hf 语音数据集（librispeech_asr、voxpopuli 等，配合 --backend openai-audio）：保留的最短音频（秒）" },
    { "--asr-max-audio-len-sec", type = "number", default = math.huge,
      help = "hf speech datasets: longest clip kept (s); clips over 30 s are always dropped, as vLLM drops what "
        .. "Whisper cannot take",
      help_zh = "hf 语音数据集：保留的最长音频（秒）；超过 30 秒的总会被丢弃（与 vLLM 相同，Whisper 处理不了）" },
    { "--disable-shuffle", type = "bool", help = "custom and hf: keep the file's order", help_zh = "custom 与 hf：保持文件中的顺序" },
    { "--no-oversample", type = "bool", help = "sharegpt, custom and hf: do not repeat samples to reach --num-prompts",
      help_zh = "sharegpt、custom 与 hf：有效样本不足时不重复采样" },
    { "--hf-name", help = "hf: the dataset's Hub id (it chooses how prompts are made) when --dataset-path is a local copy",
      help_zh = "hf：--dataset-path 为本地副本时，数据集在 Hub 上的 id（决定提示的构造方式）" },
    { "--hf-subset", help = "hf: the subset (configuration): files under a folder of that name",
      help_zh = "hf：子集（配置），即同名文件夹下的文件" },
    { "--hf-split", help = "hf: the split (default: the one vLLM reads for the dataset, mostly train)",
      help_zh = "hf：划分（默认与 vLLM 相同，多为 train）" },
    { "--hf-output-len", type = "int", help = "hf: output tokens per request (default: the dataset's own)",
      help_zh = "hf：每个请求的输出 token 数（默认用数据集自己的）" },
    { "--revision", help = "branch, tag or commit on the Hugging Face Hub of the tokenizer (a model id) and of an hf "
        .. "dataset (default main): the cached snapshot of that revision, else downloaded at it",
      help_zh = "Hugging Face Hub 上分词器（模型 id）与 hf 数据集的分支、标签或提交（默认 main）：先用缓存中该版本的快照，否则按该版本下载" },
    { "--enable-multimodal-chat", type = "bool",
      help = "hf multimodal datasets: send prompts as chat messages with their media (moonbench always does, "
        .. "for chat backends, as vLLM's serving benchmark does, so this changes nothing)",
      help_zh = "hf 多模态数据集：把提示和媒体一起作为对话消息发送（对话接口总是如此，与 vLLM 的服务基准相同，所以没有作用）" },
    { "--blazedit-min-distance", type = "number", default = 0.0, help = "hf BlazEdit: smallest edit distance kept (0-1)",
      help_zh = "hf BlazEdit：保留的最小编辑距离（0-1）" },
    { "--blazedit-max-distance", type = "number", default = 1.0, help = "hf BlazEdit: largest edit distance kept (0-1)",
      help_zh = "hf BlazEdit：保留的最大编辑距离（0-1）" },
    { "--random-mm-base-items-per-request", type = "int", default = 1,
      help = "random-mm: images per request (before --random-mm-num-mm-items-range-ratio)",
      help_zh = "random-mm：每个请求的图片数（再按 --random-mm-num-mm-items-range-ratio 浮动）" },
    { "--random-mm-num-mm-items-range-ratio", type = "number", default = 0.0,
      help = "random-mm: images per request vary within [floor(n(1-r)), ceil(n(1+r))], 0 <= r <= 1",
      help_zh = "random-mm：每个请求的图片数在 [floor(n(1-r)), ceil(n(1+r))] 内变化，0 <= r <= 1" },
    { "--random-mm-limit-mm-per-prompt", metavar = "JSON", default = '{"image": 255, "video": 1}',
      help = "random-mm: most items per request of each modality, e.g. '{\"image\": 3, \"video\": 0}'",
      help_zh = "random-mm：每种模态每个请求最多几个，如 '{\"image\": 3, \"video\": 0}'" },
    { "--random-mm-bucket-config", metavar = "DICT", default = "{(256, 256, 1): 0.5, (720, 1280, 1): 0.5, (720, 1280, 16): 0.0}",
      help = "random-mm: image sizes and their probabilities, vLLM's form {(height, width, 1): p, ...}; images are "
        .. "random-pixel JPEGs (quality 75) sent as data URLs; video buckets (frames > 1) need probability 0",
      help_zh = "random-mm：图片尺寸及其概率，写法同 vLLM：{(高, 宽, 1): 概率, ...}；图片是随机像素的 JPEG（质量 75），"
        .. "以 data URL 发送；视频（帧数 > 1）的概率必须为 0" },
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
    { "--timed-trace-sec-multiplier", type = "number", default = 1,
      help = "timed_trace: seconds per timestamp unit (1: seconds, 0.001: milliseconds), as vLLM",
      help_zh = "timed_trace：每个时间戳单位是多少秒（1：秒，0.001：毫秒），同 vLLM" },
    { "--trace-block-size", type = "int", default = 512, help = "mooncake: tokens per hash block", help_zh = "mooncake：每个 hash 块的 token 数" },
    { "--timed-trace-chunk-hash-size", type = "int", default = 16,
      help = "timed_trace: prompt tokens per hash id (16 in Qwen/Alibaba traces, 512 in Mooncake's)",
      help_zh = "timed_trace：每个 hash id 代表的提示 token 数（Qwen/阿里轨迹为 16，Mooncake 为 512）" },
    { "--timed-trace-label-timestamp", default = "timestamp", help = "timed_trace: the field of each line's timestamp",
      help_zh = "timed_trace：时间戳字段名" },
    { "--timed-trace-label-input-length", default = "input_length", help = "timed_trace: the field of the prompt length",
      help_zh = "timed_trace：输入长度字段名" },
    { "--timed-trace-label-output-length", default = "output_length", help = "timed_trace: the field of the output length",
      help_zh = "timed_trace：输出长度字段名" },
    { "--timed-trace-label-hash-ids", default = "hash_ids", help = "timed_trace: the field of the block hash ids",
      help_zh = "timed_trace：块 hash id 字段名" },
    { "--self-timed", type = "bool", negatable = true,
      help = "send requests at the trace's timestamps (default: on for timed_trace and mooncake unless --request-rate "
        .. "is given); --no-self-timed uses --request-rate instead",
      help_zh = "按轨迹时间戳发送（timed_trace 与 mooncake 默认开启，除非给出 --request-rate）；--no-self-timed 改用 --request-rate" },
    { "--apply-chat-template", type = "bool",
      help = "render prompts with the model's chat template before sending them to a completions endpoint",
      help_zh = "向文本补全接口发送前，先用模型的对话模板渲染提示词" },
    { "--prompt-token-ids", type = "bool", help = "send token ids instead of text (completions servers that accept them)",
      help_zh = "发送 token id 而不是文本（适用于接受 token id 的补全接口）" },

    { group = "Options of vLLM datasets moonbench does not have yet (accepted so vLLM command lines parse; "
        .. "given with another dataset, they are reported as unused)",
      group_zh = "moonbench 尚未支持的 vLLM 数据集的参数（为兼容 vLLM 命令行而接受；与其它数据集一起给出时会提示未使用）" },
    { "--bfcl-categories", help = "hf BFCL: comma-separated categories (default simple,live_simple,multiple)",
      help_zh = "hf BFCL：逗号分隔的类别（默认 simple,live_simple,multiple）" },
    { "--speed-bench-dataset-subset", default = "qualitative",
      choices = { "qualitative", "throughput_1k", "throughput_2k", "throughput_8k", "throughput_16k", "throughput_32k" },
      help = "speed_bench: the SPEED-Bench subset", help_zh = "speed_bench：SPEED-Bench 子集" },
    { "--speed-bench-output-len", type = "int", default = 4096, help = "speed_bench: output tokens per request",
      help_zh = "speed_bench：每个请求的输出 token 数" },
    { "--speed-bench-category", help = "speed_bench: keep only this category", help_zh = "speed_bench：只保留该类别" },

    { group = "Traffic", group_zh = "流量" },
    { "--request-rate", type = "number", default = math.huge,
      help = "requests per second; inf sends all at once", help_zh = "每秒请求数；inf 表示一次全部发出" },
    { "--burstiness", type = "number", default = 1.0,
      help = "gamma shape of arrivals: 1 = Poisson, <1 burstier, >1 more even",
      help_zh = "到达间隔的 gamma 形状参数：1 = 泊松，<1 更突发，>1 更均匀" },
    { "--ramp-up-strategy", choices = { "linear", "exponential" },
      help = "raise the rate from --ramp-up-start-rps to --ramp-up-end-rps over the requests (instead of --request-rate)",
      help_zh = "请求速率随请求序号从 --ramp-up-start-rps 升到 --ramp-up-end-rps（代替 --request-rate）" },
    { "--ramp-up-start-rps", type = "number", help = "rate of the first request when ramping", help_zh = "斜坡起点速率" },
    { "--ramp-up-end-rps", type = "number", help = "rate of the last request when ramping", help_zh = "斜坡终点速率" },
    { "--max-concurrency", type = "int", help = "at most this many requests in flight", help_zh = "同时在途的最大请求数（并发上限）" },
    { "--duration", type = "number", help = "stop sending after this many seconds", help_zh = "发送多少秒后停止" },
    { "--shard", help = "I/N: this process is shard I (from 0) of N and sends the requests at schedule positions "
        .. "k with k mod N = I, at their times, with its part of --max-concurrency and --num-warmups (also "
        .. "MOONBENCH_SHARD=I/N, Kubernetes' JOB_COMPLETION_INDEX with --shards N, Slurm's SLURM_PROCID/SLURM_NTASKS); "
        .. "every shard builds the same seeded dataset and schedule",
      help_zh = "I/N：本进程是 N 个分片中的第 I 个（从 0 起），只发送调度序号 k 满足 k mod N = I 的请求（按原定时间），"
        .. "并分得 --max-concurrency 与 --num-warmups 的相应份额（也可用 MOONBENCH_SHARD=I/N、Kubernetes 的 "
        .. "JOB_COMPLETION_INDEX 加 --shards N、Slurm 的 SLURM_PROCID/SLURM_NTASKS）；各分片生成相同的数据集与调度" },
    { "--start-at", help = "TIME: a common start for the shards (Unix seconds or RFC 3339): each prepares its "
        .. "dataset, tokenizer and connections, then waits until TIME to send (also MOONBENCH_START_AT); a time "
        .. "already past, or a shard ready after it, stops with an error before sending",
      help_zh = "TIME：各分片的共同开始时间（Unix 秒或 RFC 3339）：各自准备好数据集、分词器与连接后，等到该时刻才开始发送"
        .. "（也可用 MOONBENCH_START_AT）；时间已过，或分片准备好时已过该时刻，会在发送前报错退出" },
    { "--shards", type = "int", help = "N: the number of shards, with Kubernetes' JOB_COMPLETION_INDEX as this pod's I",
      help_zh = "N：分片总数，配合 Kubernetes 的 JOB_COMPLETION_INDEX 作为本 Pod 的序号 I" },
    { "--metrics-port", type = "int",
      help = "P: serve moonbench's own Prometheus metrics at http://HOST:P/metrics while it runs (requests sent, "
        .. "in flight, completed, failed by kind, TTFT/ITL/E2EL and schedule-lag histograms, achieved rate; "
        .. "labelled with the shard); 0 picks a free port, printed on stderr (also on run and sweep)",
      help_zh = "P：运行期间在 http://HOST:P/metrics 提供 moonbench 自身的 Prometheus 指标（已发送、在途、完成、按类型的失败、"
        .. "TTFT/ITL/E2EL 与调度延迟直方图、实际速率；带分片标签）；0 表示自动选空闲端口（打印在 stderr；run 与 sweep 同样可用）" },
    { "--metrics-host", help = "HOST: the address --metrics-port listens on (default 0.0.0.0, every interface, "
        .. "so Prometheus can reach a pod; 127.0.0.1 for this machine only)",
      help_zh = "HOST：--metrics-port 监听的地址（默认 0.0.0.0 即所有网卡，便于 Prometheus 抓取 Pod；只给本机用请设 127.0.0.1）" },
    { "--num-warmups", type = "int", default = 0, help = "unmeasured warm-up requests", help_zh = "不计入统计的预热请求数" },
    { "--probe-request-rate", type = "number", default = 0,
      help = "also send one-token \"Hi\" probes at this rate (one at a time, outside --max-concurrency) and report "
        .. "their latency apart: how the workload stalls unrelated requests",
      help_zh = "同时以该速率发送只要 1 个 token 的 \"Hi\" 探针请求（一次一个，不受 --max-concurrency 限制），单独报告其延迟" },
    { "--multi-turn", type = "bool",
      help = "multi-turn chats (as vLLM's Rust client): --num-prompts conversations, each user sending its next turn "
        .. "with the whole history once the last answer arrived; built on mb.users (random text, or sharegpt's own turns)",
      help_zh = "多轮对话：--num-prompts 段对话，每个用户收到回答后带着全部历史发下一轮；基于 mb.users（随机文本，或 sharegpt 自带的各轮）" },
    { "--multi-turn-num-turns", type = "int", default = 3, help = "turns per conversation (with --multi-turn)",
      help_zh = "每段对话的轮数" },
    { "--multi-turn-min-turns", type = "int",
      help = "fewest turns: each conversation gets a uniform count between this and --multi-turn-max-turns",
      help_zh = "最少轮数：每段对话的轮数在它与 --multi-turn-max-turns 之间均匀随机" },
    { "--multi-turn-max-turns", type = "int", help = "most turns (with --multi-turn-min-turns)", help_zh = "最多轮数" },
    { "--per-turn-input-len", type = "int",
      help = "new user tokens each turn adds to the history (default --random-input-len)",
      help_zh = "每一轮新增的用户输入 token 数（默认取 --random-input-len）" },
    { "--multi-turn-delay-ms", type = "number", default = 0,
      help = "think time between a turn's answer and the next turn (ms)", help_zh = "收到回答后到发下一轮之间的思考时间（毫秒）" },
    { "--multi-turn-concurrency", type = "int",
      help = "conversations in progress at once (default --max-concurrency, else all)",
      help_zh = "同时进行的对话数（默认取 --max-concurrency，否则全部同时）" },
    { "--num-runs", type = "int", default = 1,
      help = "run the benchmark N times (files -run1, -run2, ...) and report each metric's mean, std, min, max and "
        .. "coefficient of variation across the runs (<result>.runs.json with --save-result)",
      help_zh = "重复运行 N 次（文件名加 -run1、-run2 ……），并报告每个指标在各次之间的平均值、标准差、最小、最大与变异系数" },
    { "--sweep-max-concurrency", metavar = "N,N,...",
      help = "run the benchmark once per concurrency cap in the list (e.g. 1,2,4,8), as vLLM's Rust client; "
        .. "each point is its own result file, and a table compares them (<result>.sweep.json with --save-result)",
      help_zh = "对列表中的每个并发上限各运行一次（如 1,2,4,8），每个点一个结果文件，最后打印对比表" },
    { "--sweep-request-rate", metavar = "R,R,...",
      help = "run the benchmark once per request rate in the list (e.g. 1,2,4,inf); with --sweep-max-concurrency, "
        .. "every pair",
      help_zh = "对列表中的每个请求速率各运行一次（如 1,2,4,inf）；与 --sweep-max-concurrency 同用时遍历每一对组合" },
    { "--sweep-num-prompts-factor", type = "number",
      help = "with --sweep-max-concurrency: send factor x concurrency requests at each point (instead of "
        .. "--num-prompts), so every point runs about as long",
      help_zh = "与 --sweep-max-concurrency 同用：每个点发送 factor × 并发数 个请求（代替 --num-prompts），使各点时长相近" },
    { "--dry-run", type = "bool",
      help = "build the dataset, print its statistics and send nothing",
      help_zh = "只构建数据集并打印其统计，不发送任何请求" },
    { "--verify-prompt-lengths", type = "bool",
      help = "before the run, ask the server's /tokenize (vLLM, SGLang, llama.cpp and TGI have one) how many tokens "
        .. "each text prompt really has, without special tokens as here; print how many differ and by how much, and "
        .. "the prompts longer than the server's max_model_len, and save it as prompt_length_check in the result "
        .. "(chat message lists and token ids are not checked)",
      help_zh = "运行前向服务器的 /tokenize（vLLM、SGLang、llama.cpp、TGI 都有）询问每个文本提示实际有多少 token"
        .. "（与这里一样不含特殊 token）；打印有多少个不同、差多少，以及超过服务器 max_model_len 的提示，"
        .. "并以 prompt_length_check 存入结果（对话消息列表和 token id 不检查）" },
    { "--grace-period", type = "number", default = 5,
      help = "after Ctrl-C, seconds to let requests in flight finish", help_zh = "按 Ctrl-C 后等待在途请求完成的秒数" },

    { group = "Request", group_zh = "请求参数" },
    { "--ignore-eos", type = "bool", help = "ask the server to ignore EOS (default on for the random dataset; --no-ignore-eos turns it off)",
      help_zh = "让服务器忽略结束符，输出满 max_tokens（random 数据集默认开启）" },
    { "--temperature", type = "number", help = "sampling temperature (default 0.0, as vLLM's benchmark)", help_zh = "采样温度（默认 0.0）" },
    { "--top-p", type = "number", help = "top-p sampling", help_zh = "top-p 采样" },
    { "--top-k", type = "int", help = "top-k sampling", help_zh = "top-k 采样" },
    { "--min-p", type = "number", help = "min-p sampling", help_zh = "min-p 采样" },
    { "--frequency-penalty", type = "number", help = "frequency penalty (into each request's body)",
      help_zh = "频率惩罚（写入请求体）" },
    { "--presence-penalty", type = "number", help = "presence penalty", help_zh = "存在惩罚" },
    { "--repetition-penalty", type = "number", help = "repetition penalty (llama.cpp: repeat_penalty)",
      help_zh = "重复惩罚（llama.cpp 为 repeat_penalty）" },
    { "--logprobs", type = "int",
      help = "log-probabilities per token: completions logprobs=N, chat logprobs=true and top_logprobs=N, TGI "
        .. "top_n_tokens, SGLang return_logprob and top_logprobs_num, llama.cpp n_probs",
      help_zh = "每个 token 返回的对数概率个数（按各接口的字段名写入请求体）" },
    { "--use-beam-search", type = "bool", help = "ask vLLM for beam search (use_beam_search: true in the body)",
      help_zh = "让 vLLM 使用束搜索（请求体里 use_beam_search: true）" },
    { "--lora-modules", type = "list", metavar = "NAME",
      help = "LoRA adapters served by the server: each request is sent with one of them as its model",
      help_zh = "服务器加载的 LoRA 适配器名：每个请求用其中一个作为 model" },
    { "--lora-assignment", default = "random", choices = { "random", "round-robin" },
      help = "how requests get their LoRA: a seeded random choice, or in turn", help_zh = "LoRA 的分配方式：随机或轮流" },
    { "--extra-body", help = "JSON object merged into every request body", help_zh = "合并进每个请求体的 JSON 对象" },
    { "--disable-streaming", type = "bool", help = "ask for whole JSON answers instead of SSE streams (no TTFT/ITL)",
      help_zh = "不使用流式输出（此时没有 TTFT/ITL）" },
    { "--no-stream", type = "bool",
      help = "vLLM: load a Hugging Face dataset whole instead of streaming it; moonbench streams the rows of "
        .. "Parquet and JSON Lines files either way (the same prompts), so it changes nothing (for answers "
        .. "without streaming, use --disable-streaming)",
      help_zh = "vLLM 中表示不以流式方式加载 HF 数据集；moonbench 无论如何都按行流式读取 Parquet 与 JSON Lines 文件"
        .. "（提示相同），所以没有作用（不要流式回答请用 --disable-streaming）" },
    { "--continuous-usage-stats", type = "bool",
      help = "ask vLLM for token counts in every chunk (exact ITL when chunks carry several tokens)",
      help_zh = "让 vLLM 在每个 chunk 里报告 token 数（多 token chunk 时 ITL 更准）" },

    { group = "Metrics", group_zh = "指标" },
    { "--server-metrics-interval", type = "number", default = 1,
      help = "read the server's Prometheus /metrics every N seconds during the run (skipped if it has none)",
      help_zh = "运行期间每 N 秒读取一次服务器的 Prometheus /metrics（没有则跳过）" },
    { "--no-server-metrics", type = "bool", help = "do not read the server's /metrics",
      help_zh = "不读取服务器的 /metrics" },
    { "--profile", type = "bool",
      help = "call vLLM's /start_profile and /stop_profile around the measured part (server needs VLLM_TORCH_PROFILER_DIR)",
      help_zh = "在正式测量前后调用 vLLM 的 /start_profile 与 /stop_profile（服务器需设置 VLLM_TORCH_PROFILER_DIR）" },
    { "--profile-batch-threshold", type = "int", metavar = "N",
      help = "with --profile: start the profiler only once the server's /metrics shows N requests running, "
        .. "and stop it --profile-duration seconds later (as vLLM's Rust client); never reached: a note, no profile",
      help_zh = "配合 --profile：等服务器 /metrics 显示有 N 个请求在运行时才开始采集，--profile-duration 秒后停止"
        .. "（与 vLLM 的 Rust 客户端相同）；一直没达到则记一条提示，不采集" },
    { "--profile-duration", type = "number", default = 5.0, metavar = "S",
      help = "seconds a --profile-batch-threshold profile captures (default 5; it also stops when the run ends)",
      help_zh = "--profile-batch-threshold 触发后采集多少秒（默认 5；运行结束时也会停止）" },
    { "--steady-state", type = "bool",
      help = "also report the steady state: the plateau of requests in flight (the concurrency cap in a capped run), "
        .. "ramp-up and drain left out, with its window and its throughput and latencies (as vLLM's Rust client); "
        .. "in the result file as steady_state",
      help_zh = "另外报告稳态：去掉开头爬坡和结尾收尾，只看在途请求数处于平台期（有并发上限时即达到上限）的那段时间，"
        .. "给出窗口、吞吐和延迟；结果文件中为 steady_state" },
    { "--reset-prefix-cache", type = "bool",
      help = "drop the server's prefix cache before the measured part of each run (POST /reset_prefix_cache: vLLM "
        .. "started with VLLM_SERVER_DEV_MODE=1; or SGLang's /flush_cache), so prompts an earlier run sent are not "
        .. "served from it; stops with an error if the server cannot (as vLLM's Rust client)",
      help_zh = "每次运行的正式测量前清空服务器的前缀缓存（POST /reset_prefix_cache：需以 VLLM_SERVER_DEV_MODE=1 "
        .. "启动 vLLM；或 SGLang 的 /flush_cache），避免之前运行发过的提示词直接命中缓存；服务器不支持时报错停止" },
    { "--percentile-metrics",
      help = "metrics to report: ttft,tpot,itl,e2el and vLLM's client_queue_time,e2el_including_client_queue "
        .. "(shown with --max-concurrency; the second also needs a finite --request-rate); default ttft,tpot,itl, "
        .. "and e2el for pooling backends (embeddings, pooling, rerank), as vLLM",
      help_zh = "要报告的指标；默认 ttft,tpot,itl，池化类后端（embeddings、pooling、rerank）默认 e2el，与 vLLM 相同" },
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
    { "--bounded", type = "bool",
      help = "keep no record in memory, for runs of hours: each goes to --save-records (required) and into HDR "
        .. "histograms; percentiles within 0.1%, counts, means and maxima exact (no --save-detailed, plots or steady state)",
      help_zh = "内存中不保留记录，适合跑几个小时：每条记录写入 --save-records（必须给）并计入 HDR 直方图；"
        .. "分位数误差在 0.1% 以内，计数、均值、最大值精确（不能同时用 --save-detailed、图表或稳态指标）" },
    { "--save-pytorch-format", type = "bool",
      help = "also write <result>.pytorch.json, vLLM's PyTorch-benchmark records (also on with $SAVE_TO_PYTORCH_BENCHMARK_FORMAT)",
      help_zh = "同时写出 vLLM 的 PyTorch 基准格式 <结果>.pytorch.json" },
    { "--plot-timeline", type = "bool",
      help = "write <result>.timeline.html: every request's wait, prefill and tokens on one time axis (no network needed)",
      help_zh = "写出 <结果>.timeline.html：所有请求的排队、预填充与各 token 画在同一时间轴上（离线可看）" },
    { "--timeline-itl-thresholds", default = "25,50",
      help = "two ITL thresholds in ms for the timeline's colours: green below the first, orange between, red above",
      help_zh = "时间线着色的两个 ITL 阈值（毫秒）：低于第一个为绿，中间为橙，高于第二个为红" },
    { "--plot-dataset-stats", type = "bool",
      help = "write <result>.dataset.html: histograms of prompt, output and total tokens of the requests sent",
      help_zh = "写出 <结果>.dataset.html：所发请求的输入、输出与总 token 数直方图" },
    { "--disable-tqdm", type = "bool", help = "no progress bar", help_zh = "不显示进度条" },
    { "--lang", default = "en", choices = { "en", "zh" }, help = "language of the printed table", help_zh = "结果表的语言" },

    { group = "Built-in simulator (when no server is given)", group_zh = "内置模拟服务器（未指定服务器时）" },
    { "--sim-ttft-ms", type = "number", help = "fixed engine: simulated time to first token (default 50; chooses the fixed engine)",
      help_zh = "fixed 引擎：模拟的首 token 时间（默认 50；给出即使用 fixed 引擎）" },
    { "--sim-itl-ms", type = "number", help = "fixed engine: simulated time between tokens (default 10; chooses the fixed engine)",
      help_zh = "fixed 引擎：模拟的 token 间隔（默认 10；给出即使用 fixed 引擎）" },
    { "--sim-jitter", type = "number", default = 0, help = "relative jitter of simulated times (0.1 = ±10%)",
      help_zh = "模拟时间的相对抖动（0.1 = ±10%）" },
    { "--sim-tokens-per-chunk", type = "int", default = 1, help = "tokens packed in each SSE chunk",
      help_zh = "每个 SSE chunk 里打包的 token 数" },
    { "--sim-reasoning-tokens", type = "int", default = 0,
      help = "the first N tokens of each chat answer are reasoning (reasoning_content), like a reasoning model",
      help_zh = "每个对话回答的前 N 个 token 作为思考内容（reasoning_content），模拟推理模型" },
    { "--sim-max-running", type = "int", help = "fixed engine: requests generated at once; others queue",
      help_zh = "fixed 引擎：同时生成的请求数上限，其余排队" },
    { "--sim-faults", default = "", help = "random faults, e.g. reset=0.01,http500=0.01",
      help_zh = "随机故障注入，例如 reset=0.01,http500=0.01" },
    { "--sim-engine", choices = { "fixed", "step" },
      help = "step: a vLLM-like engine (continuous batching, KV cache, preemption, prefix cache), so concurrency "
        .. "slows tokens as on a GPU; fixed: the same TTFT/ITL for every request (default: fixed if --sim-ttft-ms, "
        .. "--sim-itl-ms or --sim-max-running is given, else step)",
      help_zh = "step：类似 vLLM 的引擎（连续批处理、KV 缓存、抢占、前缀缓存），并发越高 token 越慢，和真 GPU 一样；"
        .. "fixed：每个请求相同的 TTFT/ITL（默认：给了 --sim-ttft-ms、--sim-itl-ms 或 --sim-max-running 时为 fixed，否则为 step）" },
    { "--sim-preset", help = "step engine: model and GPU to simulate (moonbench serve-sim --preset list)",
      help_zh = "step 引擎：要模拟的模型和 GPU（见 moonbench serve-sim --preset list）" },
    { "--sim-preset-file", help = "step engine: a JSON file of your own costs and limits (docs/simulator.md)",
      help_zh = "step 引擎：自己的耗时和上限（JSON 文件，见 docs/zh/simulator.md）" },
    { "--sim-max-num-seqs", type = "int", help = "step engine: most sequences per step",
      help_zh = "step 引擎：每步最多的序列数" },
    { "--sim-max-num-batched-tokens", type = "int", help = "step engine: most tokens per step",
      help_zh = "step 引擎：每步最多的 token 数" },
    { "--sim-kv-cache-tokens", type = "int", help = "step engine: KV-cache size in tokens (small: preemptions)",
      help_zh = "step 引擎：KV 缓存大小（token 数；设小会发生抢占）" },
    { "--sim-max-model-len", type = "int", help = "step engine: longest prompt + max_tokens accepted",
      help_zh = "step 引擎：可接受的最长“提示 + max_tokens”" },
    { "--sim-no-prefix-caching", type = "bool", help = "step engine: no prefix cache",
      help_zh = "step 引擎：关闭前缀缓存" },
    { "--sim-data-parallel", type = "int", help = "step engine: N engines behind a router (a data-parallel deployment)",
      help_zh = "step 引擎：N 个引擎副本，前面有路由（模拟数据并行部署）" },
    { "--sim-router", choices = { "round-robin", "least-loaded", "prefix-aware" },
      help = "step engine: how requests are spread over the engines (default least-loaded)",
      help_zh = "step 引擎：请求如何分给各个引擎（默认 least-loaded）" },
  },
}

return spec
