-- moonbench/report.lua —— 把结果打印成 vLLM 的 "Serving Benchmark Result" 表格。
-- Prints a result in the layout of vLLM's "Serving Benchmark Result" table,
-- in English or Chinese (lang = "zh"), followed by moonbench's own section.
--
-- 指标小词典（Metric glossary）:
--   TTFT  首 token 时间 (Time To First Token)：从发出请求到收到第一个 token。用户"等多久才看到字"。
--   TPOT  每输出 token 时间 (Time Per Output Token)：(E2EL - TTFT) / (输出 token 数 - 1)，不含首 token。
--   ITL   token 间延迟 (Inter-Token Latency)：相邻两个 token 到达的间隔；一个 chunk 里有多个 token 时平均分摊。
--   E2EL  端到端延迟 (End-to-End Latency)：从发出请求到最后一个 token。
--   吞吐量 throughput：每秒完成的请求数 / 每秒输出的 token 数。
--   goodput 有效吞吐量：每秒完成且满足 SLO（如 TTFT ≤ 500ms）的请求数。

local M = {}

local L = {
  en = {
    title = " Serving Benchmark Result ",
    partial = "PARTIAL RESULT (interrupted; only what finished is counted)",
    stopped = "Stopped by the script: ",
    ok = "Successful requests:",
    failed = "Failed requests:",
    cancelled = "Cancelled requests (cut off):",
    conc = "Maximum request concurrency:",
    rate = "Request rate configured (RPS):",
    custom = "none (custom schedule)",
    duration = "Benchmark duration (s):",
    tin = "Total input tokens:",
    tout = "Total generated tokens:",
    tseq = "Total input sequences:",
    sthr = "Input sequence throughput (seq/s):",
    rthr = "Request throughput (req/s):",
    good = "Request goodput (req/s):",
    othr = "Output token throughput (tok/s):",
    peak_out = "Peak output token throughput (tok/s):",
    peak_conc = "Peak concurrent requests:",
    rtfx = "RTFx (Inverse Real-Time Factor):",
    tthr = "Total Token throughput (tok/s):",
    ttft = "Time to First Token",
    tpot = "Time per Output Token (excl. 1st token)",
    itl = "Inter-token Latency",
    e2el = "End-to-end Latency",
    client_queue_time = "Client-side Queueing",
    e2el_including_client_queue = "Queue-inclusive End-to-end Latency",
    mean = "Mean", median = "Median",
    extra = " moonbench ",
    lag = "Schedule lag P50/P99/max (ms):",
    achieved = "Achieved request rate (req/s):",
    requested = "requested",
    ittft = "TTFT from intended send P%s (ms):",
    ie2el = "E2EL from intended send P%s (ms):",
    chunk = "Chunk gap (raw ITL) mean (ms):",
    reasoning = "Reasoning / answer tokens:",
    server = " Server metrics (%s) ",
    users = " Virtual users ",
    steady = " Steady state ",
    swin = "Window (s from first send):",
    slevel = "Requests in flight / sent in window:",
    sthr = "Request / output throughput:",
    sttft = "TTFT mean/P%s (ms):",
    stpot = "TPOT mean/P%s (ms):",
    sitl = "ITL mean/P%s (ms):",
    snone = "No steady state: ",
    uline = "Users / conversations / requests:",
    turn = "Turn %d: prompt tok, TTFT mean/P%s (ms):",
    conv = "Conversation latency mean/P%s (ms):",
    srun = "Running requests mean/max:",
    swait = "Waiting requests mean/max:",
    skv = "KV-cache usage mean/max (%):",
    shit = "Prefix-cache hit rate (%):",
    spre = "Preemptions during the run:",
    sacc = "Spec-decode acceptance rate (%):",
    slen = "Spec-decode acceptance length:",
    ttfa = "Time to first answer mean/P%s (ms):",
    probe = "Probe Requests",
    probe_ok = "Probe requests completed:",
    probe_failed = "Probe requests failed:",
    probe_median = "Median probe E2EL (ms):",
    probe_p99 = "P99 probe E2EL (ms):",
    probe_max = "Max probe E2EL (ms):",
    errors = "Errors by kind:",
    pre = "Connections opened before start:",
    health = "Client health:",
    short = "Short answers:",
    short_fmt = "warning: %d answers came back shorter than max_tokens although ignore_eos was on (does the server honour it?)",
    cpu = "timing error <= %.2f ms, I/O CPU %d%%",
    why = "  why: ",
    bounded = "Bounded (no records in memory):",
    bounded_fmt = "percentiles within 0.1%% (HDR histograms), peaks in 1 ms buckets; counts and means exact",
  },
  zh = {
    title = " 服务基准测试结果 ",
    partial = "部分结果（运行被中断，只统计已完成的请求）",
    stopped = "脚本提前结束了运行：",
    ok = "成功请求数:",
    failed = "失败请求数:",
    cancelled = "被中断切断的请求数:",
    conc = "最大请求并发数:",
    rate = "设定的请求速率 (RPS):",
    custom = "无（自定义的发送时间表）",
    duration = "测试时长 (s):",
    tin = "输入 token 总数:",
    tout = "生成 token 总数:",
    tseq = "输入序列总数:",
    sthr = "输入序列吞吐量 (seq/s):",
    rthr = "请求吞吐量 (req/s):",
    good = "有效请求吞吐量 goodput (req/s):",
    othr = "输出 token 吞吐量 (tok/s):",
    peak_out = "峰值输出 token 吞吐量 (tok/s):",
    peak_conc = "峰值并发请求数:",
    rtfx = "RTFx（逆实时因子）:",
    tthr = "总 token 吞吐量 (tok/s):",
    ttft = "首 token 时间 TTFT",
    tpot = "每输出 token 时间 TPOT（不含首 token）",
    itl = "token 间延迟 ITL",
    e2el = "端到端延迟 E2EL",
    client_queue_time = "客户端排队时间",
    e2el_including_client_queue = "含客户端排队的端到端延迟",
    mean = "平均", median = "中位数",
    extra = " moonbench 附加指标 ",
    lag = "调度滞后 P50/P99/最大 (ms):",
    achieved = "实际请求速率 (req/s):",
    requested = "设定",
    ittft = "按计划发送时刻计的 TTFT P%s (ms):",
    ie2el = "按计划发送时刻计的 E2EL P%s (ms):",
    chunk = "chunk 间隔（原始 ITL）平均 (ms):",
    reasoning = "思考 / 回答 token 数:",
    server = " 服务器自身指标（%s） ",
    users = " 虚拟用户 ",
    steady = " 稳态 ",
    swin = "稳态窗口（距第一个请求，秒）:",
    slevel = "在途请求数 / 窗口内发出的请求数:",
    sthr = "请求 / 输出 token 吞吐量:",
    sttft = "TTFT 平均/P%s (ms):",
    stpot = "TPOT 平均/P%s (ms):",
    sitl = "ITL 平均/P%s (ms):",
    snone = "没有稳态：",
    uline = "用户数 / 对话数 / 请求数:",
    turn = "第 %d 轮：提示 token，TTFT 平均/P%s (ms):",
    conv = "整段对话耗时 平均/P%s (ms):",
    srun = "运行中请求数 平均/最大:",
    swait = "排队请求数 平均/最大:",
    skv = "KV cache 占用 平均/最大 (%):",
    shit = "前缀缓存命中率 (%):",
    spre = "运行期间的抢占次数:",
    sacc = "推测解码接受率 (%):",
    slen = "推测解码平均接受长度:",
    ttfa = "首个回答 token 时间 平均/P%s (ms):",
    probe = "探针请求",
    probe_ok = "成功的探针请求数:",
    probe_failed = "失败的探针请求数:",
    probe_median = "探针 E2EL 中位数 (ms):",
    probe_p99 = "探针 E2EL P99 (ms):",
    probe_max = "探针 E2EL 最大值 (ms):",
    errors = "错误分类:",
    pre = "开始前预先建立的连接数:",
    health = "客户端健康度:",
    short = "回答偏短:",
    short_fmt = "警告：设了 ignore_eos，仍有 %d 个回答短于 max_tokens（服务器是否支持 ignore_eos？）",
    cpu = "计时误差 <= %.2f ms，I/O 线程 CPU %d%%",
    why = "  依据: ",
    bounded = "有界模式（内存不留记录）:",
    bounded_fmt = "分位数误差在 0.1%% 以内（HDR 直方图），峰值按 1 ms 时间桶；计数与均值精确",
  },
}

-- 终端里中文占两个字符宽度；按显示宽度对齐。Display width: CJK characters take two columns.
local function width(s)
  local w = 0
  for _, c in utf8.codes(s) do
    if (c >= 0x1100 and c <= 0x115F) or (c >= 0x2E80 and c <= 0xA4CF) or (c >= 0xAC00 and c <= 0xD7A3)
      or (c >= 0xF900 and c <= 0xFAFF) or (c >= 0xFE30 and c <= 0xFE4F) or (c >= 0xFF00 and c <= 0xFF60)
      or (c >= 0xFFE0 and c <= 0xFFE6) then
      w = w + 2
    else
      w = w + 1
    end
  end
  return w
end

local function pad(s, n)
  local w = width(s)
  if w >= n then return s end
  return s .. string.rep(" ", n - w)
end

local function center(s, n, c)
  local w = width(s)
  if w >= n then return s end
  local left = (n - w) // 2
  return string.rep(c, left) .. s .. string.rep(c, n - w - left)
end

local function num(v)
  if v == nil then return "-" end
  if math.type(v) == "integer" then return tostring(v) end
  return string.format("%.2f", v)
end

local function plabel(p)
  if p == math.floor(p) then return tostring(math.floor(p)) end
  return tostring(p)
end

--- Display width of a string (CJK characters count 2) and padding to a width.
M.width = width
M.pad = pad

--- Returns the table as a string. `s` is `res:summary()`; opts.lang = "en" | "zh".
function M.format(s, opts)
  opts = opts or {}
  local t = L[opts.lang or "en"] or L.en
  local lines = {}
  local function line(label, value) lines[#lines + 1] = pad(label, 40) .. " " .. value end
  lines[#lines + 1] = center(t.title, 50, "=")
  if s.partial then lines[#lines + 1] = t.partial end
  if s.stopped then lines[#lines + 1] = t.stopped .. s.stopped end
  line(t.ok, tostring(s.completed))
  -- 被中断切断的请求单独列出，与结果文件中的 failed / cancelled 一致。
  -- Requests cut off by an interruption are listed apart, as failed / cancelled in the file.
  line(t.failed, tostring(s.failed))
  if (s.cancelled or 0) > 0 then line(t.cancelled, tostring(s.cancelled)) end
  if s.max_concurrency then line(t.conc, tostring(s.max_concurrency)) end
  if type(s.request_rate) == "number" then line(t.rate, num(s.request_rate))
  elseif s.schedule == "custom" then line(t.rate, t.custom) end
  line(t.duration, num(s.duration))
  line(t.tin, tostring(s.total_input_tokens))
  -- 池化类结果（embeddings、rerank）没有输出 token，改为输入序列数。Pooling results count input sequences.
  local pooling = s.total_input_sequences ~= nil
  if pooling then line(t.tseq, tostring(s.total_input_sequences))
  else line(t.tout, tostring(s.total_output_tokens)) end
  line(t.rthr, num(s.request_throughput))
  if pooling then line(t.sthr, num(s.input_sequence_throughput)) end
  if s.request_goodput ~= nil then line(t.good, num(s.request_goodput)) end
  if not pooling then
    line(t.othr, num(s.output_throughput))
    line(t.peak_out, num(s.max_output_tokens_per_s))
  end
  -- vLLM 的 max_concurrent_requests 按 1 秒分桶计数，会把先后发生的请求也算作"同时"；
  -- 这里打印精确的同时在途峰值 peak_in_flight（JSON 里两者都有）。
  -- vLLM's max_concurrent_requests counts requests per 1-second bucket and overcounts;
  -- the table shows the exact peak in flight (both are in the JSON).
  line(t.peak_conc, num((s.peak_in_flight or s.max_concurrent_requests or 0) + 0.0))
  line(t.tthr, num(s.total_token_throughput))
  -- 语音转写：每秒处理了多少秒音频（vLLM 的 RTFx）。Seconds of audio per second, as vLLM prints it.
  if (s.rtfx or 0) > 0 then line(t.rtfx, num(s.rtfx)) end
  local percentiles = s.percentiles or { 99 }
  for _, m in ipairs({ { "ttft", "TTFT" }, { "tpot", "TPOT" }, { "itl", "ITL" }, { "e2el", "E2EL" },
      { "client_queue_time", "Client Queue Time" }, { "e2el_including_client_queue", "E2EL incl. Client Queue" } }) do
    local key, short = m[1], m[2]
    if s["mean_" .. key .. "_ms"] ~= nil then
      lines[#lines + 1] = center(t[key], 50, "-")
      line(t.mean .. " " .. short .. " (ms):", num(s["mean_" .. key .. "_ms"]))
      line(t.median .. " " .. short .. " (ms):", num(s["median_" .. key .. "_ms"]))
      for _, p in ipairs(percentiles) do
        local v = s["p" .. plabel(p) .. "_" .. key .. "_ms"]
        if v ~= nil then line("P" .. plabel(p) .. " " .. short .. " (ms):", num(v)) end
      end
    end
  end
  -- 探针请求（--probe-request-rate）：与 vLLM 相同的一节。Probe requests, as vLLM prints them.
  if s.probe_completed then
    lines[#lines + 1] = center(t.probe, 50, "-")
    line(t.probe_ok, tostring(s.probe_completed))
    line(t.probe_failed, tostring(s.probe_failed))
    line(t.probe_median, num(s.probe_median_e2el_ms))
    line(t.probe_p99, num(s.probe_p99_e2el_ms))
    line(t.probe_max, num(s.probe_max_e2el_ms))
  end
  if not opts.vllm_only then
    lines[#lines + 1] = center(t.extra, 50, "-")
    local hp = plabel(percentiles[#percentiles])
    for _, p in ipairs(percentiles) do if p == 99 then hp = "99" end end
    line(t.lag, string.format("%s / %s / %s", num(s.median_schedule_lag_ms),
      num(s["p" .. hp .. "_schedule_lag_ms"]), num(s.max_schedule_lag_ms)))
    if s.achieved_request_rate then
      local req = type(s.request_rate) == "number" and string.format(" (%s %s)", t.requested, num(s.request_rate)) or ""
      line(t.achieved, num(s.achieved_request_rate) .. req)
    end
    line(string.format(t.ittft, hp), num(s["p" .. hp .. "_intended_ttft_ms"]))
    line(string.format(t.ie2el, hp), num(s["p" .. hp .. "_intended_e2el_ms"]))
    line(t.chunk, num(s.mean_chunk_itl_ms))
    -- 推理模型：先输出思考（reasoning），再输出回答；TTFA = 到第一个回答 token 的时间。
    -- Reasoning models: TTFT counts the first reasoning token; TTFA the first answer token.
    if (s.total_reasoning_tokens or 0) > 0 then
      line(t.reasoning, string.format("%d / %d", s.total_reasoning_tokens, s.total_answer_tokens or 0))
      line(string.format(t.ttfa, hp), num(s.mean_ttfa_ms) .. " / " .. num(s["p" .. hp .. "_ttfa_ms"]))
    end
    local errs = {}
    for k, v in pairs(s.errors_by_kind or {}) do errs[#errs + 1] = k .. "=" .. tostring(v) end
    table.sort(errs)
    if #errs > 0 then line(t.errors, table.concat(errs, ", ")) end
    if (s.short_outputs or 0) > 0 then line(t.short, string.format(t.short_fmt, s.short_outputs)) end
    line(t.pre, tostring(s.preconnected_connections or 0))
    -- --bounded：数字来自直方图，说明精度。A bounded run's numbers come from histograms: say how precise.
    if s.summary_precision then line(t.bounded, string.format(t.bounded_fmt)) end
    local h = s.client_health
    if h then
      -- 客户端自己的计时误差上界：verdict 为 warning 时，上面的数字不可全信。
      -- The client's own timing-error bound: with a warning, don't trust the numbers above blindly.
      line(t.health, (h.verdict or "?") .. " (" .. string.format(t.cpu, h.timing_error_bound_ms or 0,
        math.floor((h.cpu_share or 0) * 100 + 0.5)) .. ")")
      if h.verdict == "warning" then
        for _, w in ipairs(h.warnings or {}) do lines[#lines + 1] = "  warning: " .. w end
      elseif h.reason and h.reason ~= "" then
        lines[#lines + 1] = t.why .. h.reason
      end
    end
  end
  -- 稳态（--steady-state）：去掉开头"爬坡"和结尾"收尾"的阶段，只看服务器满负载时的吞吐和延迟。
  -- The steady state: ramp-up and drain left out, only the plateau of requests in flight.
  local ss = not opts.vllm_only and s.steady_state
  if ss then
    lines[#lines + 1] = center(t.steady, 50, "-")
    if ss.found then
      local hp = plabel(percentiles[#percentiles])
      line(t.swin, string.format("%s - %s (%.0f%%)", num(ss.window_start_s), num(ss.window_end_s), ss.share_of_run * 100))
      line(t.slevel, string.format("%d / %d", ss.in_flight, ss.requests))
      line(t.sthr, num(ss.request_throughput) .. " req/s / " .. num(ss.output_throughput) .. " tok/s")
      for _, k in ipairs{ { "ttft", t.sttft }, { "tpot", t.stpot }, { "itl", t.sitl } } do
        if ss["mean_" .. k[1] .. "_ms"] then
          line(string.format(k[2], hp), num(ss["mean_" .. k[1] .. "_ms"]) .. " / " .. num(ss["p" .. hp .. "_" .. k[1] .. "_ms"] or 0))
        end
      end
      if ss.note then lines[#lines + 1] = "  note: " .. ss.note end
    else
      lines[#lines + 1] = t.snone .. tostring(ss.why)
    end
  end
  -- 虚拟用户：每一轮（turn）的提示越来越长（带着历史），看 TTFT 是否随轮次变慢。
  -- Virtual users: prompts grow turn by turn (history); see whether TTFT grows with them.
  local us = not opts.vllm_only and s.users
  if us then
    lines[#lines + 1] = center(t.users, 50, "-")
    local n = 0
    for _, bt in ipairs(us.by_turn or {}) do n = n + bt.requests end
    line(t.uline, string.format("%d / %d / %d", us.users, us.conversations, n))
    local hp = plabel(percentiles[#percentiles])
    for i, bt in ipairs(us.by_turn or {}) do
      if i > 8 then break end
      local tt = bt.ttft or {}
      line(string.format(t.turn, bt.turn, hp), string.format("%.0f, %s / %s", bt.mean_prompt_tokens,
        num(tt.mean_ms or 0), num(tt["p" .. hp .. "_ms"] or 0)))
    end
    local cl = us.conversation_latency or {}
    line(string.format(t.conv, hp), num(cl.mean_ms or 0) .. " / " .. num(cl["p" .. hp .. "_ms"] or 0))
  end
  -- 服务器自己报告的指标（Prometheus /metrics）：排队多说明服务器已饱和，KV cache 接近 100% 会导致抢占。
  -- The server's own view: a growing queue means it is saturated; a full KV cache causes preemptions.
  local sm = not opts.vllm_only and s.server_metrics
  if sm and sm.summary then
    local m = sm.summary
    lines[#lines + 1] = center(string.format(t.server, sm.source or "?"), 50, "-")
    local function pair(a, b, scale)
      scale = scale or 1
      return num(a * scale) .. " / " .. num(b * scale)
    end
    if m.mean_running then line(t.srun, pair(m.mean_running, m.max_running)) end
    if m.mean_waiting then line(t.swait, pair(m.mean_waiting, m.max_waiting)) end
    if m.mean_kv_cache_usage then line(t.skv, pair(m.mean_kv_cache_usage, m.max_kv_cache_usage, 100)) end
    if m.prefix_cache_hit_rate then line(t.shit, num(m.prefix_cache_hit_rate * 100)) end
    if m.preemptions then line(t.spre, string.format("%d", m.preemptions)) end
    -- 推测解码：草稿 token 被接受的比例，以及每步平均产出几个 token（含额外的那个）。
    -- Speculative decoding: the share of draft tokens accepted, and tokens per step.
    if m.spec_decode_acceptance_rate then line(t.sacc, num(m.spec_decode_acceptance_rate)) end
    if m.spec_decode_acceptance_length then line(t.slen, num(m.spec_decode_acceptance_length)) end
  end
  lines[#lines + 1] = string.rep("=", 50)
  return table.concat(lines, "\n")
end

--- Prints the table (see M.format).
function M.print(s, opts)
  print(M.format(s, opts))
end

return M
