-- moonbench/argparse.lua —— 命令行参数解析（与 vLLM 的 benchmark_serving.py 写法兼容）。
-- Command-line flags for scripts, the way vLLM's benchmark accepts them:
--   --flag value   --flag=value   --flag_name（下划线和连字符等价，_ and - are the same）
--   布尔开关 --save-result；多值参数 --goodput ttft:500 tpot:50（读到下一个 -- 开头的参数为止）
-- 拼错的参数会得到"你是不是想写 …"的提示，而不是被悄悄忽略。
--
-- 用法 Usage:
--   local argparse = require "moonbench.argparse"
--   local args = argparse.parse({
--     prog = "my_bench.lua",
--     flags = {
--       { "--users", type = "int", default = 8, help = "number of virtual users" },
--       { "--rate", type = "number", default = math.huge, help = "requests per second (inf = all at once)" },
--       { "--save", type = "bool", help = "save the result" },
--     },
--   }, arg)
--   print(args.users, args.rate, args.save)

local core = require "moonbench.core"

local M = {}

local function norm(name)
  return (name:gsub("^%-%-", ""):gsub("_", "-"))
end

local function key_of(name)
  return (norm(name):gsub("-", "_"))
end

local function fail(spec, msg)
  error((spec.prog or "moonbench") .. ": " .. msg .. "\nRun with --help to see every flag.", 0)
end

local function convert(spec, flag, raw)
  local t = flag.type or "string"
  local name = "--" .. norm(flag[1])
  if t == "int" then
    local v = math.tointeger(tonumber(raw))
    if v == nil then fail(spec, name .. " expects a whole number, got '" .. raw .. "'") end
    return v
  elseif t == "number" then
    local low = raw:lower()
    if low == "inf" or low == "infinity" then return math.huge end
    local v = tonumber(raw)
    if v == nil then fail(spec, name .. " expects a number (or inf), got '" .. raw .. "'") end
    return v
  elseif t == "string" or t == "list" then
    if flag.choices then
      for _, c in ipairs(flag.choices) do
        if c == raw then return raw end
      end
      local hint = core.suggest(raw, flag.choices)
      fail(spec, name .. " must be one of " .. table.concat(flag.choices, ", ") .. ", got '" .. raw .. "'"
        .. (hint and (" (did you mean '" .. hint .. "'?)") or ""))
    end
    return raw
  end
  error("argparse: unknown flag type " .. tostring(t))
end

--- Prints the help text of `spec` (in Chinese when lang is "zh" and help_zh is given).
function M.help(spec, lang)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add("usage: " .. (spec.prog or "moonbench") .. " [flags]")
  if spec.description then add(""); add(lang == "zh" and spec.description_zh or spec.description) end
  for _, f in ipairs(spec.flags) do
    if f.group then
      add("")
      add((lang == "zh" and f.group_zh or f.group) .. ":")
    else
      local name = "--" .. norm(f[1])
      -- 可取反的开关同时列出 --no- 形式（如 --self-timed, --no-self-timed）。
      if f.type == "bool" and f.negatable then name = name .. ", --no-" .. norm(f[1]) end
      local meta = ""
      if f.type == "bool" then meta = ""
      elseif f.type == "list" then meta = " V [V ...]"
      else meta = " " .. (f.metavar or (f.type or "string"):upper()) end
      local line = "  " .. name .. meta
      local help = (lang == "zh" and f.help_zh) or f.help or ""
      if f.default ~= nil and f.type ~= "bool" then
        local d = f.default
        if d == math.huge then d = "inf" end
        help = help .. " (default: " .. tostring(d) .. ")"
      end
      if #line < 34 then
        line = line .. string.rep(" ", 34 - #line) .. help
      else
        line = line .. "\n" .. string.rep(" ", 34) .. help
      end
      add(line)
    end
  end
  print(table.concat(out, "\n"))
end

--- Parses `argv` (a list of strings) by `spec`; returns a table keyed by flag name
--- with dashes turned into underscores. Errors name the flag and the fix.
function M.parse(spec, argv)
  local by_name, names = {}, {}
  local args = {}
  for _, f in ipairs(spec.flags) do
    if not f.group then
      local n = norm(f[1])
      -- --lang 的默认值跟随 MOONBENCH_LANG 或系统区域（LANG=zh_CN.UTF-8 时为中文）。
      -- --lang defaults to MOONBENCH_LANG, else the locale (Chinese for LANG=zh_CN.UTF-8).
      if n == "lang" and f.default == "en" then f.default = core.default_lang() end
      by_name[n] = f
      names[#names + 1] = "--" .. n
      if f.type == "list" then
        args[key_of(n)] = f.default and { table.unpack(f.default) } or nil
      elseif f.type == "bool" then
        args[key_of(n)] = f.default or false
      else
        args[key_of(n)] = f.default
      end
    end
  end
  local positional = {}
  local given = {}
  local seen_list = {}
  local i = 1
  local n = #argv
  while i <= n do
    local a = argv[i]
    if a == "--help" or a == "-h" then
      -- --lang counts wherever it is, before or after --help.
      local lang = args.lang
      for j = 1, n do
        local v = argv[j]:match("^%-%-lang=(.*)$")
        if v then lang = v elseif argv[j] == "--lang" and argv[j + 1] then lang = argv[j + 1] end
      end
      M.help(spec, lang)
      os.exit(0)
    end
    if a:sub(1, 2) == "--" and #a > 2 then
      local body, inline = a:sub(3), nil
      local eq = body:find("=", 1, true)
      if eq then body, inline = body:sub(1, eq - 1), body:sub(eq + 1) end
      local name = norm(body)
      local f = by_name[name]
      local negated = false
      if not f and name:sub(1, 3) == "no-" and by_name[name:sub(4)] and by_name[name:sub(4)].type == "bool" then
        f, negated = by_name[name:sub(4)], true
      end
      if not f then
        local hint = core.suggest("--" .. name, names)
        fail(spec, "unknown flag --" .. name .. (hint and (" (did you mean " .. hint .. "?)") or ""))
      end
      local key = key_of(f[1])
      given[key] = true
      if f.type == "bool" then
        if inline then
          local low = inline:lower()
          if low == "true" or low == "1" or low == "yes" then args[key] = not negated
          elseif low == "false" or low == "0" or low == "no" then args[key] = negated
          else fail(spec, "--" .. name .. " is an on/off switch; write --" .. name .. " or --no-" .. name) end
        else
          args[key] = not negated
        end
        i = i + 1
      elseif f.type == "list" then
        local vals = {}
        if inline then vals[#vals + 1] = convert(spec, f, inline) end
        i = i + 1
        while i <= n and argv[i]:sub(1, 2) ~= "--" do
          vals[#vals + 1] = convert(spec, f, argv[i])
          i = i + 1
        end
        if #vals == 0 then fail(spec, "--" .. name .. " needs at least one value") end
        -- The first use replaces the default; repeating the flag adds more values.
        if not seen_list[key] then args[key] = {}; seen_list[key] = true end
        for _, v in ipairs(vals) do table.insert(args[key], v) end
      else
        local raw = inline
        if raw == nil then
          raw = argv[i + 1]
          if raw == nil or (raw:sub(1, 2) == "--" and #raw > 2 and tonumber(raw) == nil) then
            fail(spec, "--" .. name .. " needs a value")
          end
          i = i + 2
        else
          i = i + 1
        end
        args[key] = convert(spec, f, raw)
      end
    elseif a == "--" then
      i = i + 1
    else
      if not spec.positional then
        fail(spec, "unexpected argument '" .. a .. "' (flags start with --)")
      end
      positional[#positional + 1] = a
      i = i + 1
    end
  end
  args._positional = positional
  args._given = given
  return args
end

--- Splits "K=V" strings into a table (vLLM's --metadata / --header form).
function M.pairs_of(list, flag)
  local out = {}
  for _, item in ipairs(list or {}) do
    local k, v = item:match("^([^=]+)=(.*)$")
    if not k then
      -- 不回显值：它可能是密钥（如 'Authorization: Bearer sk-...'）。
      -- Never echo the value: it may be a secret ('Authorization: Bearer sk-...').
      local name = item:match("^%s*([%w%-_]+)") or "?"
      error((flag or "--metadata") .. ": '" .. name .. "…' is not KEY=VALUE (value not shown); write it as "
        .. (flag or "--metadata") .. " '" .. name .. "=VALUE'", 0)
    end
    out[k:match("^%s*(.-)%s*$")] = v:match("^%s*(.-)%s*$")
  end
  return out
end

--- Splits a comma-separated string ("ttft,tpot,itl") into a list.
function M.split(s)
  local out = {}
  for part in tostring(s):gmatch("[^,]+") do
    local p = part:match("^%s*(.-)%s*$")
    if p ~= "" then out[#out + 1] = p end
  end
  return out
end

return M
