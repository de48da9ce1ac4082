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
    { "--resume", type = "bool", help = "continue the newest run folder of this same config: skip points whose "
        .. "result file is complete, run the rest (an incomplete file is kept as NAME.json.incomplete)",
      help_zh = "继续同一配置最新的结果目录：跳过结果文件已完整的组合，运行其余的（不完整的文件改名为 NAME.json.incomplete 保留）" },
    { "--overwrite", type = "bool", help = "with --resume: run every point again, replacing its result file",
      help_zh = "与 --resume 一起用：所有组合重新运行，替换已有结果文件" },
    { "--dry-run", type = "bool", help = "print the plan and the total request count, run nothing",
      help_zh = "只打印计划和总请求数，不运行" },
    { "--result-dir", help = "where run folders go (overrides result_dir of the config; default results)",
      help_zh = "结果目录放在哪里（覆盖配置里的 result_dir；默认 results）" },
    { "--lang", default = "en", choices = { "en", "zh" }, help = "language of messages and tables", help_zh = "语言" },
    table.unpack(own_flags),
  },
}, arg)
-- 提示文字写英文，mb.tr 从唯一的消息目录（src/i18n/messages.zh.tsv）取中文，再填入 %d/%s。
-- Texts are English; mb.tr finds their Chinese in the one message catalogue.
local function t(en, ...) return string.format(mb.tr(en, args.lang), ...) end
local function say(en, ...) print(t(en, ...)) end

local path = args._positional[1] or "config.yaml"
if #args._positional > 1 then error(t("moonbench sweep: give one config file, got %d", #args._positional), 0) end
local cfg = sweep.load(path, { lang = args.lang })
if args.overwrite and not args.resume then
  error(t("moonbench sweep: --overwrite replaces files of an earlier run folder, so it needs --resume (without --resume every sweep writes a new folder and replaces nothing)"), 0)
end
local bench_script = cfg.bench_script or "scripts/benchmark_serving.lua"

-- 每次扫描写入一个新的结果目录：{result_dir}/{模型短名}_{年月日_时分秒}/（与原工具包 main.py batch 相同），
-- 所以再跑一次也不会覆盖上一次的结果。--resume 则继续同一配置最新的那个目录。
-- Each sweep writes a new run folder, so running it again never overwrites the last one;
-- --resume continues the newest folder of the same config (.sweep.json records which config).
local parent = sweep.parent(cfg, { result_dir = args.result_dir })
local model = sweep.model(cfg)
local key = sweep.plan_key(sweep.plan(cfg, { result_dir = args.result_dir }))
local run_dir
if args.resume then
  for _, f in ipairs(mb.run_folders(parent)) do
    local fh = io.open(f.path .. "/.sweep.json")
    if fh then
      local ok, meta = pcall(mb.json.decode, fh:read("a"))
      fh:close()
      if ok and type(meta) == "table" and meta.plan_key == key then run_dir = f.path; break end
    end
  end
  if run_dir then
    say("Resuming %s", run_dir)
  else
    say("--resume: no run folder of this config in %s yet; starting a new one", parent)
  end
end
if not run_dir then
  if args.dry_run then
    run_dir = parent .. "/" .. mb.model_short(model) .. "_" .. mb.date():gsub("-", "_")
  else
    run_dir = mb.run_folder(parent, model)
    local fh = assert(io.open(run_dir .. "/.sweep.json", "w"))
    fh:write(mb.json.encode({ config = path, model = model, started = mb.date(), plan_key = key }))
    fh:close()
  end
end
local points = sweep.plan(cfg, { dir = run_dir, lang = args.lang })

local total = 0
for _, p in ipairs(points) do total = total + p.np end
local target = cfg.base_url or t("the built-in simulator")
say("Sweep %s: %d points, %d requests in all, against %s", path, #points, total, target)

if args.dry_run then
  for i, p in ipairs(points) do
    print(string.format("[%d/%d] %s -> %s", i, #points, sweep.describe(p), p.file))
  end
  say("(dry run: nothing was sent; %d requests would be)", total)
  return
end

local status = {}
local stopped = false
for i, p in ipairs(points) do
  local row = { i = i, point = sweep.describe(p), file = p.file, seconds = 0 }
  status[#status + 1] = row
  if stopped or mb.interrupted() then
    row.status = "not run"
  elseif args.resume and not args.overwrite and sweep.valid_result(p.file) then
    row.status = "skipped"
    print(string.format("[%d/%d] %s: %s", i, #points, row.point, t("already done, skipped")))
  else
    if mb.exists(p.file) and not sweep.valid_result(p.file) then
      -- 不完整的结果文件不覆盖，改名保留。An incomplete file is kept, renamed.
      local keep, n = p.file .. ".incomplete", 1
      while mb.exists(keep) do n = n + 1; keep = p.file .. ".incomplete" .. n end
      os.rename(p.file, keep)
    end
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
      say("point failed: %s", row.reason)
    end
  end
end

-- 汇总表 Status table -----------------------------------------------------------------
local words = { ok = t("ok"), failed = t("failed"), skipped = t("skipped"),
  interrupted = t("interrupted"), ["not run"] = t("not run") }
print("")
say("Sweep results:")
local pad = require("moonbench.report").pad
print("  " .. pad("#", 5) .. pad(t("point"), 37) .. pad(t("status"), 13)
  .. pad(t("time (s)"), 10) .. t("result file"))
local counts = {}
for _, r in ipairs(status) do
  counts[r.status] = (counts[r.status] or 0) + 1
  print("  " .. pad(tostring(r.i), 5) .. pad(r.point, 37) .. pad(words[r.status], 13)
    .. pad(string.format("%.1f", r.seconds), 10) .. r.file .. (r.reason and ("  (" .. r.reason .. ")") or ""))
end
local next_cmd = parent == "results" and "moonbench aggregate" or ("moonbench aggregate --dir " .. run_dir)
say("%d ok, %d failed, %d skipped, %d not run, in %s. Next: %s",
    counts.ok or 0, counts.failed or 0, counts.skipped or 0, (counts["not run"] or 0) + (counts.interrupted or 0),
    run_dir, next_cmd)
status.run_dir = run_dir
if (counts.failed or 0) > 0 then
  error(t("moonbench sweep: %d point(s) failed", counts.failed), 0)
end
return status
