-- moonbench.lua —— 脚本里 `local mb = require "moonbench"` 得到的就是这个模块。
-- The public Lua API of moonbench. Copy any part you like into your own script.
--
-- 分工（Who does what）:
--   * Lua（你的脚本）决定"发什么、什么时候发"：提示词、到达时间表、多轮对话。
--   * Rust（moonbench 本体）负责所有"热路径"：HTTP、SSE 流解析、给每个 token 打时间戳、统计。
--   Lua 决定 what/when；Rust 负责 how fast/how exact。脚本里的代码从不在"每个 token"上运行，
--   所以脚本写得再复杂也不会让测量变慢或变不准。
--
-- 如果你在自己脚本所在目录放一个同名文件（例如 moonbench/report.lua），
-- 它会优先于内置版本被 require —— 这样就能修改默认行为。
-- A file with the same module name next to your script overrides the bundled one.

local core = require "moonbench.core"

-- Rust 写的函数已经按命名空间放在 core 里，名字与 mb 里一样（mb.target、mb.dataset.random、
-- mb.arrival.poisson、mb.json.encode …）；本文件只把它们放进 mb，再加上用 Lua 写的部分：
-- mb.run / mb.users 的包装、mb.rand、mb.slo_search、mb.rate_sweep。下面的注释是各函数的用法；
-- 完整参考（每个选项的类型、默认值、单位）见 docs/zh/lua-api.md（英文 docs/lua-api.md）。
-- The native functions come from core, already in their namespaces; this file adds
-- the Lua-written ones. The full reference is docs/lua-api.md.
local mb = {}
for name, value in pairs(core) do
  if name ~= "check_options" then mb[name] = value end   -- check_options 只供内部使用
end

-- 目标服务器 Target ---------------------------------------------------------
-- mb.target{ base_url = "http://127.0.0.1:8000", backend = "openai-chat", model = "Qwen/Qwen3-8B" }
--   backend:  "openai"/"vllm"（/v1/completions 文本补全）或 "openai-chat"（/v1/chat/completions 对话）；
--             也可以是各服务器的原生接口: "sglang"（/generate）, "tgi"（/generate_stream）,
--             "tensorrt-llm"（/v2/models/ensemble/generate_stream）, "llama.cpp"（/completion）,
--             "deepspeed-mii"（不流式）, "openai-embeddings"（/v1/embeddings，只测延迟与吞吐）,
--             以及 vLLM 的别名 "lmdeploy", "scalellm", "sglang-oai", "*-chat"。
--   不写 base_url（也不写 host/port）时，自动在本机启动内置的模拟服务器（simulated server），
--   没有 GPU 也能把每个例子跑起来。它默认是类似 vLLM 的 step 引擎（并发越高 token 越慢）：
--   sim = { preset = "qwen3-8b-l40s", kv_cache_tokens = 8192 } 换模型/GPU、调 KV 缓存；
--   sim = { ttft_ms = 50, itl_ms = 10 } 则改用固定耗时（见 docs/zh/simulator.md）。
--   其它可选项: endpoint, served_model_name, api_key（默认读 OPENAI_API_KEY，且绝不写进结果文件）,
--   headers = {K = "V"}, timeout（秒，默认 600）, stream（默认 true）, body = {额外请求字段},
--   tokenizer（统计服务器没报告的 token 数用）, continuous_usage（让 vLLM 每个 chunk 都报 token 数）,
--   request_id_prefix（x-request-id 头的前缀，后接请求序号，方便在服务器日志里找请求；
--   不设时每个请求用一个随机 UUID，有的服务器（如 llama-cpp-python）只接受 UUID）。
--   sim 里还可以写 reasoning_tokens = N：每个对话回答的前 N 个 token 作为"思考"（reasoning_content）发送。
-- mb.sim{...}：单独启动一个模拟服务器，返回一个对象：sim.base_url / host / port / model / engine，
--   sim:steps()（每一步的真实记录）和 sim:truth(request_id)（每个请求各块的真实发送时刻）。
--   Start a simulator yourself, e.g. to point two targets at it; mb.target{ base_url = sim.base_url }.

-- 分词器 Tokenizer ----------------------------------------------------------
-- mb.tokenizer("path/to/tokenizer.json" 或 模型目录 或 "model.gguf"（llama.cpp 的模型文件，读其中的分词器）
--   或 "Org/Model"（先查本地 HF 缓存，没有则从 Hub 下载）)
-- mb.tokenizer("words") 是"按空格数词"的简易分词器：一个词 = 一个 token（内置模拟器就这样数）。
-- 用法: tok:encode(text) -> {ids}, tok:decode(ids) -> text, tok:count(text) -> 数量,
--       tok:apply_chat_template(messages, { add_generation_prompt = true }) -> 套用对话模板后的文本
--       （对话模板 chat template 读自模型目录里的 tokenizer_config.json 或 chat_template.jinja）

-- 数据集 Datasets（mb.dataset.*）---------------------------------------------
-- 返回的是"原生请求集"（native request set）：像 Lua 数组一样用 reqs[1]、#reqs，
-- 但数据留在 Rust 里，十万条提示词也不会复制进 Lua。
-- mb.dataset.random{ tokenizer = tok, n = 500, input_len = 1024, output_len = 128,
--                    range_ratio = 0.0, prefix_len = 0, seed = 0 }
--   vLLM 的 random 数据集：随机 token 组成的提示词，长度精确等于 input_len（按所给分词器计）。
-- mb.dataset.sharegpt{ path = "...json", tokenizer = tok, n = 1000, output_len = nil, seed = 0 }
--   ShareGPT 对话数据（需自行下载 ShareGPT_V3_unfiltered_cleaned_split.json）：取前两轮作提示与参考回答。
-- mb.dataset.sonnet{ tokenizer = tok, n = 100, input_len = 550, output_len = 150, prefix_len = 200, chat = false }
--   莎士比亚十四行诗（vLLM 的 sonnet.txt 已内置）：固定指令 + 共享前缀行 + 随机行。
-- mb.dataset.burstgpt{ path = "...csv", ... }
--   BurstGPT 轨迹 CSV：每行的请求/回答 token 数；use_timestamps = true 时按原始时间戳回放。
-- mb.dataset.custom{ path = "...jsonl", ... }
--   自定义 JSONL：每行 {"prompt": "..."} 或 {"messages": [...]}，可带 "output_tokens"。
-- mb.dataset.prefix_repetition{ num_prefixes = 10, ... }
--   前缀重复：num_prefixes 个共享前缀，每个前缀配若干不同后缀（测试前缀缓存 prefix caching）。
-- mb.dataset.mooncake{ path = "...jsonl", ... }
--   Mooncake 轨迹回放：hash_ids 相同的 512-token 块内容完全相同，所以前缀缓存的命中与线上一致；
--   每个请求带有时间戳，配合 arrival = "trace"（或 mb.arrival.trace{...}）按原始节奏发送。
-- mb.dataset.from_table(列表 [, 分词器])
--   把 Lua 表列表变成请求集: { {prompt = "...", max_tokens = 64}, {messages = {...}}, ... }
--   每条请求可写: prompt / messages / prompt_token_ids（三选一）, max_tokens, prompt_tokens, body = {额外字段}

-- 到达过程 Arrival processes（请求"什么时候"发出；mb.arrival.*）--------------------
-- mb.arrival.poisson{ rate = 8, burstiness = 1, seed = 0 }
--   泊松到达（Poisson arrivals）：平均每秒 rate 个请求，间隔随机。
--   burstiness = 1 就是泊松过程；< 1 更"扎堆"（突发），> 1 更均匀。与 vLLM 的 --burstiness 完全一致。
-- mb.arrival.constant{ rate = 8 }：匀速，第 i 个请求在 (i-1)/rate 秒发出。
-- mb.arrival.infinite()：无限速率，所有请求在 0 时刻同时发出（由 max_concurrency 限制同时在途的数量）。
--   即 vLLM 的 --request-rate inf。
-- mb.arrival.times{ 0, 0.5, 2.0 }：直接给出每个请求的发送时刻（秒），例如回放线上日志。
-- mb.arrival.trace{ timestamps = reqs, scale = 1.0 }
--   轨迹回放：用请求集自带的时间戳（或一个秒数列表），scale 缩放（0.5 = 两倍速回放）。
--   在 mb.run 里写 arrival = "trace" 也可以。
-- mb.arrival.ramp{ from = 1, to = 20, duration = 60 }   -- 60 秒内线性升到 20 req/s，然后结束
--   斜坡（ramp）：速率从 from 逐渐变到 to，用来找服务器"开始变慢"的那个负载点。
--   shape = "exponential"（按比例增长）, hold = true（到顶后保持 to 的速率）,
--   random = true / seed = 1（在曲线上按泊松过程随机到达；默认严格按曲线等间隔）
-- mb.arrival.ramp{ from = 1, to = 20, requests = 500 }  -- 按请求序号升速率（= vLLM 的 --ramp-up-*）
-- mb.arrival.steps{ { rate = 5, duration = 30 }, { rate = 10, duration = 30 }, { rate = 20, duration = 30 } }
--   阶梯（steps）：每一级一个固定速率，持续若干秒；rate = 0 表示暂停。

-- 运行 Run ------------------------------------------------------------------
-- local res = mb.run{
--   target = target, requests = reqs,
--   arrival = mb.arrival.poisson{ rate = 8 },   -- 也可以写一个数字（速率）、"inf"、时间列表或函数 function(i) return 秒 end
--   max_concurrency = 64,      -- 并发上限 concurrency：同一时刻最多有多少个请求"在路上"
--   warmup = 4,                -- 预热请求数：先发几条不计入统计（让服务器热身）
--   num_requests = 1000,       -- 一共发多少条（默认把 requests 发一遍）；duration = 秒 则按时长停止
--   slo = { ttft_ms = 500, tpot_ms = 50 },      -- 服务等级目标，用来算 goodput（有效吞吐量）
--   percentiles = {50, 90, 95, 99},             -- 要报告的分位数
--   on_response = function(r) ... end,          -- 可选：每个请求结束时调用一次（不是每个 token）
--   records_file = "results/run.jsonl",         -- 可选：边跑边把每条请求记录写入文件，崩溃也不丢
--   server_metrics = 1,        -- 每 1 秒读一次服务器的 Prometheus /metrics（默认；false 关闭；没有就自动跳过）
--   profile = false,           -- true：正式测量前后调用 vLLM 的 /start_profile 与 /stop_profile
-- }
-- res:print()                 -- 打印 vLLM 风格的结果表（res:print{ lang = "zh" } 打印中文）
-- res:save("results/run.json")-- 保存与 vLLM --save-result 兼容的 JSON
-- res:summary()               -- 汇总结果（普通 Lua 表）：s.mean_ttft_ms, s.p99_itl_ms, ...
-- res:records()               -- 每个请求一条记录：ttft, e2el, chunk_times, output_tokens, error ...
-- res:server_metrics()        -- 服务器自身的指标：{ source, summary = { mean_running, max_waiting, ... },
--                             --   series = { t = {...}, running = {...}, waiting = {...}, kv_cache_usage = {...} } }
--                             -- 服务器没有 /metrics 时为 nil。排队（waiting）持续增长说明服务器已饱和。
-- 脚本可以自己结束运行：on_response 返回 "stop"（或 false），或调用 mb.stop("原因")；
-- 已发出的请求在 grace 秒内跑完，结果照常返回，res:summary().stopped 写着原因。
-- 回调里出错也会结束运行：错误照常抛出，但用 pcall 时错误对象里带着结果（err.result），
-- 给了 save = "文件.json" 时结果总会被保存。
-- A script ends its own run with on_response returning "stop" or mb.stop(reason); an
-- error in a callback raises an error object that carries the result (err.result).
local function keeps_result(f)
  return function(o)
    local res, err = f(o)
    if res and type(o) == "table" and o.save then res:save(o.save) end
    if err then
      error(setmetatable({ message = err, result = res },
        { __tostring = function(e) return e.message end }), 2)
    end
    return res
  end
end
mb.run = keeps_result(core.run)

-- 虚拟用户 Virtual users（闭环 closed loop）---------------------------------------
-- mb.run 是"开环"：按到达过程发请求，不管上一个是否返回。真实用户是"闭环"的：发一个问题，
-- 等回答，想一会儿（think time），再问下一个。mb.users 让每个用户是一个 Lua 协程：
-- local res = mb.users{
--   target = target,
--   count = 100,               -- 用户数（同时在线的人数；也就是最大并发）
--   iterations = 3,            -- 每个用户把 scenario 跑几遍（一遍 = 一次对话 conversation）
--   duration = 60,             -- 或者：跑多少秒（到时不再发新请求，已发出的请求跑完）
--   spawn_rate = 10,           -- 每秒启动多少个用户（或 ramp = 秒数：在这段时间内均匀启动全部用户）
--   seed = 0,                  -- u:prompt 的随机种子
--   scenario = function(u)     -- 每个用户做什么；u.id 是用户编号（从 1 开始），u.iteration 是第几遍
--     local history = { { role = "user", content = u:prompt(200) } }   -- u:prompt(n)：n 个 token 的随机文本
--     for turn = 1, 3 do
--       local r = u:chat{ messages = history, max_tokens = 64 }          -- 等待回答（协程挂起，不阻塞别人）
--       if not r.success then return end                               -- r.error 说明原因
--       history[#history + 1] = { role = "assistant", content = r.text } -- 多轮对话：历史越来越长（前缀复用）
--       history[#history + 1] = { role = "user", content = u:prompt(50) }
--       u:sleep(1.0)                                                    -- 思考时间 think time
--     end
--   end,
-- }
-- u:chat / u:complete 返回这次请求的记录：text, ttft, itls, e2el, prompt_tokens, output_tokens, status, error ...
-- 结果对象与 mb.run 相同（res:print()、res:save()、汇总、报告），另外按轮次（turn）统计 TTFT、对话总时长。
-- 可以在 u 上存自己的状态（u.history = ...）；不要改 u.id 和 u.iteration。
mb.users = keeps_result(core.users)

-- 随机数 Random numbers（思考时间、长度的随机化等；调用 mb.rand.seed(n) 可复现）------------------
-- u:sleep(mb.rand.exponential(2.0))   -- 平均 2 秒的指数分布思考时间（泊松过程的间隔就是指数分布）
mb.rand = {
  seed = function(n) math.randomseed(n) end,
  -- [a, b) 上的均匀分布 / uniform on [a, b)
  uniform = function(a, b) return a + (b - a) * math.random() end,
  -- 均值为 mean 的指数分布 / exponential with the given mean
  exponential = function(mean) return -mean * math.log(1 - math.random()) end,
  -- 正态分布（Box-Muller）/ normal
  normal = function(mu, sigma)
    local u1, u2 = 1 - math.random(), math.random()
    return mu + sigma * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
  end,
  -- 从列表里随机取一个 / a random element of a list
  choice = function(list) return list[math.random(#list)] end,
}

-- 自动找负载点 Goal seeking（用 Lua 写在 moonbench/search.lua 里，可以直接阅读、复制、修改）----------
-- mb.slo_search{ target = t, requests = reqs, slo = { ttft_ms = 500, tpot_ms = 50 }, goal = 0.9 }
--   找出"至少 90% 的请求满足 SLO"时的最大请求速率（by = "concurrency" 则找最大并发）。
--   先从 start 开始翻倍找到上下界（bracketing），再二分（bisection），每次探测的结果都可保存。
-- mb.rate_sweep{ target = t, requests = reqs, rates = 8, save_dir = "results/sweep" }
--   像 guidellm 的 sweep：先一次一个（同步），再全部一起（最大吞吐），然后在两者之间均匀取 8 个速率。
local search = require "moonbench.search"
mb.slo_search = search.slo_search
mb.rate_sweep = search.rate_sweep

-- 小工具 Utilities ------------------------------------------------------------
-- mb.env("NAME", 默认值)：读环境变量
-- mb.now()：单调时钟（秒），适合计时；mb.time()：墙上时钟（Unix 秒）
-- mb.date()："YYYYmmdd-HHMMSS"，与 vLLM 结果文件名里的时间格式相同
-- mb.sleep(0.5)：暂停（不阻塞正在进行的请求）
-- mb.log(...)：打印带时间戳的日志到 stderr
-- mb.mkdir(路径)：创建目录（含上级目录）；mb.exists(路径)：文件或目录是否存在
-- mb.image_data_url("cat.png")：多模态（图片）——把本地图片变成 data URL，放进对话消息的 image_url 部分。
--   Multimodal: a local image as a data URL for a chat message's image_url part:
--   { role = "user", content = {
--       { type = "text", text = "图里是什么？" },
--       { type = "image_url", image_url = { url = mb.image_data_url("cat.png") } } } }
-- mb.bundled("scripts/config.yaml")：内置文件的内容，没有则为 nil
-- mb.suggest("max_concurency", {"max_concurrency"}) -> 最接近的拼写
-- mb.aggregate：把一个目录里的结果 JSON 汇总成表格（同 `moonbench aggregate`）：
--   local path, rows = mb.aggregate("results", nil, { format = "csv", header = "both" })
-- mb.read_result(路径)：读回一个结果 JSON（与 aggregate/report 同一个读法），不是结果文件时返回 nil 和原因
-- mb.interrupted()：用户是否按过 Ctrl-C（长脚本可以据此提前收尾）
-- mb.script：运行另一个脚本（本地文件或内置脚本），传入命令行参数，返回它的返回值。参数扫描就是这样调用基准脚本的：
--   local res, path = mb.script("scripts/benchmark_serving.lua", { "--num-prompts", "10" })
-- mb.http_get：简单的 HTTP GET：local status, body = mb.http_get("http://127.0.0.1:8000/health", 5)；
--   失败时 status 为 nil、body 为原因。
-- mb.yaml.load("config.yaml") / mb.yaml.decode(文本)：返回 t, lines；lines["input_output.2"] 是该项所在的行号（用来报错）。
-- mb.json.encode(t [, pretty]) / mb.json.decode(s)（JSON null 变成 nil）/ mb.json.null
-- mb.version：moonbench 的版本号；mb.stop(原因)：见上面"运行 Run"。

-- 拼错的名字立即报错（而不是 "attempt to call a nil value"）：mb.runn → 提示 mb.run。
-- A name that is not part of the API is an error that suggests the nearest one.
local function strict(t, prefix)
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  return setmetatable(t, { __index = function(_, k)
    local hint = core.suggest(tostring(k), names)
    error(prefix .. tostring(k) .. " is not part of the moonbench API"
      .. (hint and (" (did you mean " .. prefix .. hint .. "?)") or ""), 2)
  end })
end
for _, ns in ipairs { "dataset", "arrival", "rand", "yaml", "json" } do strict(mb[ns], "mb." .. ns .. ".") end
strict(mb, "mb.")

return mb
