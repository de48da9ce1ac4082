-- check_server.lua —— `moonbench check [CONFIG.yaml]`：第一次测真实服务器时从这里开始。
-- A beginner's first command against a server (the seed toolkit's example_usage.py):
--   1. 检查配置文件      the config is valid
--   2. 检查服务器能否连通  the server answers (/health, then /v1/models) and serves the configured model
--   3. 冒烟测试          a smoke test: 5 prompts, 128/128 tokens, concurrency 1
--   4. 询问是否继续       a y/N question (skipped with --yes)
--   5. 完整参数扫描 + 汇总 the full sweep, the aggregation, and a short summary
-- 每一步出错时都会给出具体的修改建议。Each step explains what to fix when something is wrong.

local mb = require "moonbench"
local argparse = require "moonbench.argparse"
local sweep = require "moonbench.sweep"

local args = argparse.parse({
  prog = "moonbench check",
  description = "Check a config and a server, run a smoke test, then (after a y/N question) the full sweep.",
  positional = true,
  flags = {
    { "--yes", type = "bool", help = "do not ask before the full sweep", help_zh = "不询问，直接运行完整扫描" },
    { "--smoke-only", type = "bool", help = "stop after the smoke test", help_zh = "冒烟测试后停止" },
    { "--result-dir", help = "override result_dir of the config", help_zh = "覆盖配置里的 result_dir" },
    { "--lang", default = "en", choices = { "en", "zh" }, help = "language", help_zh = "语言" },
  },
}, arg)
-- 提示文字写英文，mb.tr 从 moonbench 唯一的消息目录（src/i18n/messages.zh.tsv）取中文；
-- %d/%s 等占位符在翻译之后再填。Texts are English; mb.tr finds their Chinese in the one
-- message catalogue; placeholders are filled after translating.
local function t(en, ...) return string.format(mb.tr(en, args.lang), ...) end
local function say(en, ...) print(t(en, ...)) end
local function step(n, en, ...) print(string.format("\n[%d/5] %s", n, t(en, ...))) end
local function stop(en, ...) error(t(en, ...), 0) end

-- 1. 配置 Config -----------------------------------------------------------------------
local path = args._positional[1] or "config.yaml"
if not mb.exists(path) and not args._positional[1] then
  path = "scripts/config.yaml"   -- 没有自己的配置时，用内置示例（测模拟服务器）
end
step(1, "Checking the config %s", path)
local cfg = sweep.load(path, { lang = args.lang })
local points = sweep.plan(cfg, { result_dir = args.result_dir, lang = args.lang })
local total = 0
for _, p in ipairs(points) do total = total + p.np end
say("  ok: %d points, %d requests; model %s; backend %s", #points, total, cfg.model or t("(simulator)"), cfg.backend or "vllm")

-- 2. 服务器 Server -----------------------------------------------------------------------
step(2, "Checking the server")
if not cfg.base_url then
  say("  no base_url: the built-in simulated server is used (nothing to check)")
else
  local base = cfg.base_url:gsub("/+$", "")
  if base:match("/v1$") then
    stop("base_url ends in /v1: write it without /v1 (e.g. http://localhost:8000); the endpoint adds /v1/...")
  end
  local status, body = mb.http_get(base .. "/health", 5)
  if status == nil then
    stop("cannot reach %s: %s\n  Is the server running? Start it, e.g. `vllm serve %s --port 8000`,\n  and check the host and port in base_url (vLLM's default port is 8000).",
      base, body, cfg.model)
  end
  print(string.format("  GET /health -> HTTP %d", status))
  local ms, mbody = mb.http_get(base .. "/v1/models", 5)
  if ms == 401 or ms == 403 then
    stop("the server wants an API key (HTTP %d): set OPENAI_API_KEY, or add `defaults: {api-key: ...}` to the config", ms)
  elseif ms ~= 200 then
    stop("GET /v1/models answered %s: this does not look like an OpenAI-compatible server (vLLM, SGLang, TGI's /v1 API ...);\n  check base_url and backend", tostring(ms))
  end
  local ok, models = pcall(mb.json.decode, mbody)
  local served = {}
  if ok and type(models) == "table" and type(models.data) == "table" then
    for _, m in ipairs(models.data) do served[#served + 1] = m.id end
  end
  say("  the server serves: %s", table.concat(served, ", "))
  local found = false
  for _, id in ipairs(served) do if id == cfg.model then found = true end end
  if #served > 0 and not found then
    local hint = mb.suggest(cfg.model, served) or served[1]
    stop("model '%s' is not served here; set `model: %s` in %s (the name must match /v1/models exactly)", cfg.model, hint, path)
  end
end

-- 3. 冒烟测试 Smoke test ------------------------------------------------------------------
step(3, "Smoke test: 5 prompts, 128 input / 128 output tokens, concurrency 1")
local smoke = {}
for _, a in ipairs(points[1].argv) do smoke[#smoke + 1] = a end
-- 冒烟测试不写任何文件（结果、明细、图表）；后面的参数覆盖前面的。
-- The smoke test writes no file (result, details, plots); later flags win.
local writes = { ["--save-result"] = 0, ["--save-detailed"] = 0, ["--append-result"] = 0,
  ["--save-pytorch-format"] = 0, ["--result-filename"] = 1, ["--result-dir"] = 1,
  ["--plot-timeline"] = 0, ["--plot-dataset-stats"] = 0, ["--save-records"] = 1 }
for i = #smoke, 1, -1 do
  local n = writes[smoke[i]]
  if n then for _ = 0, n do table.remove(smoke, i) end end
end
for _, a in ipairs({ "--num-prompts", "5", "--random-input-len", "128", "--random-output-len", "128",
  "--max-concurrency", "1", "--disable-tqdm", "--num-warmups", "0" }) do smoke[#smoke + 1] = a end
local ok, res = pcall(mb.script, cfg.bench_script or "scripts/benchmark_serving.lua", smoke)
if not ok then
  local e = tostring(res)
  local advice = ""
  if e:find("HTTP 404", 1, true) then
    advice = t("\n  Advice: wrong endpoint (or model name). vLLM serves /v1/completions and /v1/chat/completions; check backend/endpoint.")
  elseif e:find("HTTP 401", 1, true) or e:find("HTTP 403", 1, true) then
    advice = t("\n  Advice: set OPENAI_API_KEY.")
  elseif e:find("tokenizer", 1, true) then
    advice = t("\n  Advice: point tokenizer at the model directory (with tokenizer.json).")
  end
  stop("the smoke test failed: %s%s", e, advice)
end
local s = res:summary()
say("  ok: %d/5 requests, TTFT %.1f ms, TPOT %.2f ms, %.1f output tokens/s",
    s.completed, s.mean_ttft_ms, s.mean_tpot_ms or 0, s.output_throughput)
if args.smoke_only then return end

-- 4. 询问 Ask ------------------------------------------------------------------------------
step(4, "Ready for the full sweep")
if not args.yes then
  io.write(t("Run the full sweep (%d points, %d requests)? [y/N] ", #points, total))
  local answer = io.read("l") or ""
  if not answer:lower():match("^y") then
    say("stopped; run `moonbench sweep %s` when you are ready", path)
    return
  end
end

-- 5. 扫描与汇总 Sweep and aggregate -----------------------------------------------------------
step(5, "Full sweep, then aggregation")
local sweep_args = { path, "--lang", args.lang }
if args.result_dir then sweep_args[#sweep_args + 1] = "--result-dir"; sweep_args[#sweep_args + 1] = args.result_dir end
local swept, status = pcall(mb.script, "scripts/sweep.lua", sweep_args)
if not swept then print("  " .. tostring(status)) end
-- 扫描写入的结果目录（失败时取最新的那个）。The sweep's run folder (the newest one if it failed).
local parent = sweep.parent(cfg, { result_dir = args.result_dir })
local newest = mb.run_folders(parent)[1]
local dir = (swept and type(status) == "table" and status.run_dir) or (newest and newest.path) or parent
local csv, rows = mb.aggregate(dir)
local n, rt, ttft, tpot = 0, 0, 0, 0
for _, r in ipairs(rows) do
  if r.request_throughput then
    n = n + 1
    rt, ttft, tpot = rt + r.request_throughput, ttft + (r.mean_ttft_ms or 0), tpot + (r.mean_tpot_ms or 0)
  end
end
if n > 0 then
  say("\nSummary over %d results (%s):\n  mean request throughput %.2f req/s\n  mean TTFT %.1f ms\n  mean TPOT %.2f ms\nNext: moonbench report --dir %s",
      n, csv, rt / n, ttft / n, tpot / n, dir)
end
if not swept then stop("moonbench check: the sweep had failures (see above)") end
