-- shared_system_prompt.lua —— 前缀缓存（prefix caching）：所有请求共用一段很长的系统提示词时，TTFT 能快多少？
-- Prefix caching: how much faster is the first token when every request shares a long system prompt?
--
-- 运行 Run:  moonbench run examples/shared_system_prompt.lua [-- --base-url ... --system-tokens 2000]
--
-- 概念 Concepts:
--   * 预填充（prefill）：服务器先把整个提示词"读一遍"算出 KV cache，才能开始输出第一个 token；
--     提示词越长，TTFT 越长。
--   * 前缀缓存：如果新请求的开头和之前某个请求一模一样（例如同一段系统提示词），服务器可以直接复用
--     那部分 KV cache，只计算不同的部分。vLLM、SGLang 都支持（vLLM: --enable-prefix-caching）。
--   * 本例做两组对比：A 组每个请求的系统提示词都不同；B 组所有请求共用同一段系统提示词。
--     用户问题的长度相同。B 组的 TTFT 应该明显更短，服务器指标里的前缀缓存命中率也更高。

local mb = require "moonbench"
local ex = require "moonbench.example"

local args = ex.args("shared_system_prompt.lua", "Unique vs shared system prompts (prefix caching)", {
  { "--system-tokens", type = "int", default = 1500, help = "length of the system prompt", help_zh = "系统提示词长度" },
  { "--num-prompts", type = "int", help = "requests per group (default 60; 8 with --quick)", help_zh = "每组请求数" },
})
local n = args.num_prompts or ex.size(args, 60, 8)

-- 模拟服务器扮演一张 L40S 上的 Qwen3-8B，带 vLLM 式的前缀缓存（按 16 个 token 一块做哈希）：
-- 没缓存的提示 token 每个约 90 µs 预填充（1500 token ≈ 140 ms），命中缓存的块不用再算。
-- The simulator plays Qwen3-8B on an L40S with vLLM's block-hash prefix cache: ~90 µs per uncached token.
local target = ex.target(args, { preset = "qwen3-8b-l40s" })
local tok = target.tokenizer

-- 用随机数据集造文本：prefix_len 就是"所有请求共用的开头"。Text from the random dataset.
local function requests(shared)
  local r = mb.dataset.random{ tokenizer = tok, n = n, input_len = shared and 50 or args.system_tokens + 50,
    prefix_len = shared and args.system_tokens or 0, output_len = 16, seed = shared and 1 or 2 }
  local out = {}
  for i = 1, n do
    local text = r[i].prompt
    -- 前 system_tokens 个词作为系统提示词，其余作为用户问题。The first words are the system prompt.
    local words = {}
    for w in text:gmatch("%S+") do words[#words + 1] = w end
    local system = table.concat(words, " ", 1, args.system_tokens)
    local user = table.concat(words, " ", args.system_tokens + 1)
    out[i] = { messages = { { role = "system", content = system }, { role = "user", content = user } }, max_tokens = 16 }
  end
  return out
end

local results = {}
for _, group in ipairs{ { "A: a different system prompt each time", false }, { "B: one shared system prompt", true } } do
  local res = mb.run{ target = target, requests = requests(group[2]), max_concurrency = 4, progress = false }
  local s = res:summary()
  local sm = res:server_metrics()
  results[#results + 1] = s
  print(string.format("%-42s median TTFT %6.1f ms, P99 %6.1f ms; server prefix-cache hit rate %s", group[1],
    s.median_ttft_ms, s.p99_ttft_ms,
    (sm and sm.summary.prefix_cache_hit_rate) and string.format("%.0f%%", sm.summary.prefix_cache_hit_rate * 100) or "n/a"))
end
print(string.format("\nSharing the system prompt made the median first token %.1fx faster.",
  results[1].median_ttft_ms / math.max(results[2].median_ttft_ms, 0.001)))
