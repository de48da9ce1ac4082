-- sweep.lua —— `moonbench sweep CONFIG.yaml` 就是运行这个脚本（替代原工具包的 run.py）。
-- Runs every point of a config.yaml grid in order, one result file per point, then
-- prints a status table. Copy it and run your copy with `moonbench run my_sweep.lua -- config.yaml`.
--
-- 参数扫描（sweep）是什么：把"输入/输出长度"和"并发数/请求数"的每一种组合都测一遍，
-- 得到一组结果文件，再用 `moonbench aggregate` 汇总成表格、`moonbench report` 画图，
-- 就能看出服务器在不同负载下的表现（例如并发从 1 加到 64 时，吞吐量和 TTFT 怎么变）。

local mb = require "moonbench"
local argparse = require "moonbench.argparse"
local sweep = require "moonbench.sweep"

-- 分片、共同开始时间和实时指标由 moonbench 本身处理，用法与 bench 相同（这里只为 --help 列出它们）。
-- Shards, the common start and live metrics are moonbench's own flags, as in bench (listed here for --help).
local own = { ["--shard"] = true, ["--shards"] = true, ["--start-at"] = true, ["--metrics-port"] = true, ["--metrics-host"] = true }
local own_flags = {}
for _, f in ipairs(require("moonbench.bench_flags").flags) do
  if own[f[1]] then own_flags[#own_flags + 1] = f end
end

local args = argparse.parse({
  prog = "moonbench sweep",
  description = "Run a grid of benchmarks from a config.yaml (the seed toolkit's format).",
  positional = true,
  flags = {
    { "--resume", type = "bool", help = "skip points whose result file already exists and is complete",
      help_zh = "跳过结果文件已存在且完整的组合" },
    { "--dry-run", type = "bool", help = "print the plan and the total request count, run nothing",
      help_zh = "只打印计划和总请求数，不运行" },
    { "--result-dir", help = "override result_dir of the config", help_zh = "覆盖配置里的 result_dir" },
    { "--lang", default = "en", choices = { "en", "zh" }, help = "language of messages and tables", help_zh = "语言" },
    table.unpack(own_flags),
  },
}, arg)
local zh = args.lang == "zh"
local function say(en, cn) print(zh and cn or en) end

local path = args._positional[1] or "config.yaml"
if #args._positional > 1 then error("moonbench sweep: give one config file, got " .. #args._positional, 0) end
local cfg = sweep.load(path)
local points = sweep.plan(cfg, { result_dir = args.result_dir, lang = args.lang })
local bench_script = cfg.bench_script or "scripts/benchmark_serving.lua"

local total = 0
for _, p in ipairs(points) do total = total + p.np end
local target = cfg.base_url or (zh and "内置模拟服务器" or "the built-in simulator")
say(string.format("Sweep %s: %d points, %d requests in all, against %s", path, #points, total, target),
    string.format("参数扫描 %s：共 %d 个组合、%d 个请求，目标：%s", path, #points, total, target))

if args.dry_run then
  for i, p in ipairs(points) do
    print(string.format("[%d/%d] %s -> %s", i, #points, sweep.describe(p), p.file))
  end
  say(string.format("(dry run: nothing was sent; %d requests would be)", total),
      string.format("（试运行：没有发送任何请求；实际将发送 %d 个）", total))
  return
end

local status = {}
local stopped = false
for i, p in ipairs(points) do
  local row = { i = i, point = sweep.describe(p), file = p.file, seconds = 0 }
  status[#status + 1] = row
  if stopped or mb.interrupted() then
    row.status = "not run"
  elseif args.resume and sweep.valid_result(p.file) then
    row.status = "skipped"
    print(string.format("[%d/%d] %s: %s", i, #points, row.point, zh and "已有完整结果，跳过" or "already done, skipped"))
  else
    print(string.format("\n[%d/%d] %s", i, #points, row.point))
    local t0 = mb.now()
    local ok, err = pcall(mb.script, bench_script, p.argv)
    row.seconds = mb.now() - t0
    if mb.interrupted() then
      row.status = "interrupted"
      stopped = true
    elseif ok then
      row.status = "ok"
    else
      row.status = "failed"
      row.reason = tostring(err):gsub("\n.*", "")
      say("point failed: " .. row.reason, "该组合失败：" .. row.reason)
    end
  end
end

-- 汇总表 Status table -----------------------------------------------------------------
local words = zh and { ok = "成功", failed = "失败", skipped = "跳过", interrupted = "中断", ["not run"] = "未运行" }
  or { ok = "ok", failed = "failed", skipped = "skipped", interrupted = "interrupted", ["not run"] = "not run" }
print("")
say("Sweep results:", "参数扫描结果：")
local pad = require("moonbench.report").pad
print("  " .. pad("#", 5) .. pad(zh and "组合" or "point", 37) .. pad(zh and "状态" or "status", 13)
  .. pad(zh and "耗时(s)" or "time (s)", 10) .. (zh and "结果文件" or "result file"))
local counts = {}
for _, r in ipairs(status) do
  counts[r.status] = (counts[r.status] or 0) + 1
  print("  " .. pad(tostring(r.i), 5) .. pad(r.point, 37) .. pad(words[r.status], 13)
    .. pad(string.format("%.1f", r.seconds), 10) .. r.file .. (r.reason and ("  (" .. r.reason .. ")") or ""))
end
say(string.format("%d ok, %d failed, %d skipped, %d not run. Next: moonbench aggregate %s",
    counts.ok or 0, counts.failed or 0, counts.skipped or 0, (counts["not run"] or 0) + (counts.interrupted or 0),
    args.result_dir or cfg.result_dir or "results"),
    string.format("成功 %d，失败 %d，跳过 %d，未运行 %d。下一步：moonbench aggregate %s",
    counts.ok or 0, counts.failed or 0, counts.skipped or 0, (counts["not run"] or 0) + (counts.interrupted or 0),
    args.result_dir or cfg.result_dir or "results"))
if (counts.failed or 0) > 0 then
  error(string.format("moonbench sweep: %d point(s) failed", counts.failed), 0)
end
return status
