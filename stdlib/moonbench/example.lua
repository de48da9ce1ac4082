-- moonbench/example.lua —— examples/ 里的脚本共用的小工具：命令行参数和目标服务器。
-- Shared by the scripts in examples/: the common flags and the target.
-- 每个例子不带参数就对内置模拟服务器运行；加 `-- --base-url http://...` 就测真实服务器。
-- Every example runs against the built-in simulator with no flags; add
-- `-- --base-url http://host:8000` to point it at a real server.

local mb = require "moonbench"
local argparse = require "moonbench.argparse"

local M = {}

--- 解析命令行：通用参数 + 例子自己的参数。Parses the common flags plus `extra`.
function M.args(prog, description, extra)
  local flags = {
    { group = "Server", group_zh = "服务器" },
    { "--base-url", help = "server URL; leave out to use the built-in simulator",
      help_zh = "服务器地址；不写则使用内置模拟服务器" },
    { "--model", help = "model name (default: the server's first model)", help_zh = "模型名（默认取服务器的第一个模型）" },
    { "--backend", default = "openai-chat", help = "server API, as for `moonbench bench`", help_zh = "服务器接口" },
    { "--tokenizer", help = "tokenizer.json, model directory or GGUF file (default: one word = one token)",
      help_zh = "分词器（默认：一个词算一个 token）" },
    { "--api-key", help = "bearer token (default: $OPENAI_API_KEY)", help_zh = "API 密钥" },
    { "--reset-prefix-cache", type = "bool",
      help = "empty the server's prefix cache before each run where an example repeats its prompts (always on the "
        .. "simulator; vLLM needs VLLM_SERVER_DEV_MODE=1)",
      help_zh = "在重复发送同一批提示词的例子里，每次运行前清空服务器的前缀缓存（模拟服务器总是清空；vLLM 需 VLLM_SERVER_DEV_MODE=1）" },
    { "--quick", type = "bool", help = "tiny sizes, a few seconds (what CI runs)", help_zh = "极小规模，几秒跑完（CI 用）" },
    { "--lang", default = "en", choices = { "en", "zh" }, help = "language of the tables", help_zh = "结果表的语言" },
  }
  if extra and #extra > 0 then
    flags[#flags + 1] = { group = "This example", group_zh = "本例参数" }
    for _, f in ipairs(extra) do flags[#flags + 1] = f end
  end
  return argparse.parse({ prog = prog, description = description, flags = flags }, arg)
end

--- 目标服务器；`sim` 是只在使用模拟服务器时生效的设置。The target; `sim` applies to the simulator only.
function M.target(args, sim, extra)
  local t = {
    base_url = args.base_url, model = args.model, backend = args.backend, api_key = args.api_key,
    tokenizer = args.tokenizer and mb.tokenizer(args.tokenizer) or nil,
    body = { ignore_eos = true },  -- 输出满 max_tokens 个 token，便于比较 / full-length outputs
    sim = (not args.base_url) and sim or nil,
  }
  for k, v in pairs(extra or {}) do t[k] = v end
  -- 出错时不报本文件的行号（那不是用户能改的地方），只报原因：例如 --preset 拼错时给出建议。
  -- A refusal is reported without this file's line, which is not the user's to fix.
  local ok, target = pcall(mb.target, t)
  if not ok then error((tostring(target):gsub("^runtime error: ", "")), 0) end
  return target
end

--- 每次运行前是否清空前缀缓存：模拟服务器总是清空（它支持），真实服务器要加 --reset-prefix-cache。
--- Whether to empty the prefix cache before each run: always on the simulator, else with the flag.
function M.reset_prefix_cache(args, target)
  return target.is_sim or args.reset_prefix_cache or false
end

--- 正式规模或 --quick 规模。The full size, or the quick one with --quick.
function M.size(args, full, quick)
  if args.quick then return quick end
  return full
end

--- 分隔标题。A section title.
function M.title(en, zh, args)
  print("\n== " .. ((args and args.lang == "zh") and zh or en) .. " ==")
end

return M
