//! The Lua API reference (`docs/lua-api.md`, `docs/zh/lua-api.md`), generated from
//! the option structs themselves (schemars) and from one list of the API's names,
//! so it cannot drift: `tests` fail when the files are out of date, and
//! `MOONBENCH_BLESS=1 cargo test reference` rewrites them.

use schemars::JsonSchema;
use serde_json::Value;

use super::core::AggregateOpts;
use super::data::{AssignModelsOpts, ChatTemplateOpts, DatasetCommon, RequestOpts, TokenizerOpts};
use super::run::{
    ConstantOpts, PlotTimelineOpts, PoissonOpts, RampOpts, RecordsOpts, ResultOpts, RunOpts,
    SaveOpts, SavePytorchOpts, StepOpts, StepsOpts, SummaryOpts, TraceOpts,
};
use super::session::MeasureOpts;
use super::stdlib_opts::{PrintOpts, RateSweepOpts, SloSearchOpts};
use super::target::TargetOpts;
use super::users::UsersOpts;
use crate::dataset::{
    audio, burstgpt, custom, hf, mooncake, prefix_repetition, random, random_rerank, sharegpt,
    sonnet,
};
use crate::output::result::{METRIC_DOCS, RESULT_FIELDS};
use crate::sim::SimOptions;

/// One entry of the API: its name as scripts write it, what it does (English,
/// Chinese), and its option table, if it takes one.
pub struct Entry {
    /// `mb.run`, `res:save`, ...
    pub name: &'static str,
    /// What it does, in English.
    pub en: &'static str,
    /// What it does, in Chinese.
    pub zh: &'static str,
    /// The JSON schema of its options.
    pub options: Option<fn() -> Value>,
}

fn schema<T: JsonSchema>() -> Value {
    schemars::schema_for!(T).as_value().clone()
}

macro_rules! e {
    ($name:literal, $en:literal, $zh:literal) => {
        Entry {
            name: $name,
            en: $en,
            zh: $zh,
            options: None,
        }
    };
    ($name:literal, $en:literal, $zh:literal, $t:ty) => {
        Entry {
            name: $name,
            en: $en,
            zh: $zh,
            options: Some(schema::<$t>),
        }
    };
}

/// Every public name of `require "moonbench"` (functions, values and nested
/// tables' members) and the methods of the objects it returns.
pub fn entries() -> Vec<Entry> {
    vec![
        e!(
            "mb.version",
            "moonbench's version (a string).",
            "moonbench 的版本号（字符串）。"
        ),
        e!(
            "mb.target",
            "mb.target{...}: where and how to send; with no base_url, host or port it starts the built-in simulator.",
            "mb.target{...}：发到哪里、怎么发；不写 base_url/host/port 时启动内置模拟服务器。",
            TargetOpts
        ),
        e!(
            "t:sim_truth",
            "t:sim_truth(request_id): what the built-in simulator recorded it sent for one request: received (seconds on mb.now()'s clock), ttft (s), chunk_times (s after received), chunk_tokens, and with the step engine step_ends (when the step that made each chunk ended, on mb.now()'s clock); nil if it kept nothing. Compare measurements with it in tests.",
            "t:sim_truth(request_id)：内置模拟服务器为这个请求记录的真实发送情况：received（mb.now() 时钟上的秒数）、ttft（秒）、chunk_times（received 之后的秒数）、chunk_tokens，step 引擎下还有 step_ends（生成每个块的那一步结束的时刻，mb.now() 时钟）；没有记录则为 nil。测试里用它对照测量值。"
        ),
        e!(
            "t:sim_steps",
            "t:sim_steps(): every step the simulator's step engines ran, oldest first: engine (0-based, with data_parallel), start and end (seconds on mb.now()'s clock), seqs, prefill_tokens, decode_seqs, kv_tokens, tokens_out, waiting, preempted, cached_tokens, kv_blocks_used. The ground truth of the schedule. t.sim_engine is the engine's configuration (preset, num_blocks, block_size, max_num_seqs, max_num_batched_tokens, max_model_len, chunked_prefill, prefix_caching, data_parallel, router), nil for the fixed engine.",
            "t:sim_steps()：模拟服务器的 step 引擎跑过的每一步（从早到晚）：engine（引擎编号，从 0 开始，data_parallel 时有多个）、start 和 end（mb.now() 时钟上的秒数）、seqs、prefill_tokens、decode_seqs、kv_tokens、tokens_out、waiting、preempted、cached_tokens、kv_blocks_used。这是调度的真实记录。t.sim_engine 是引擎的配置（preset、num_blocks、block_size、max_num_seqs、max_num_batched_tokens、max_model_len、chunked_prefill、prefix_caching、data_parallel、router），fixed 引擎时为 nil。"
        ),
        e!(
            "mb.sim",
            "mb.sim{...}: starts a simulator; returns it as an object with base_url, host, port, model, engine (the step engine's configuration, as t.sim_engine; nil for the fixed engine) and the methods sim:steps() and sim:truth(id). A target given its base_url (mb.target{ base_url = sim.base_url }) is linked to it, so t:sim_truth works there too.",
            "mb.sim{...}：单独启动一个模拟服务器，返回一个对象：base_url、host、port、model、engine（step 引擎的配置，同 t.sim_engine；fixed 引擎时为 nil），以及方法 sim:steps() 和 sim:truth(id)。用它的 base_url 建的目标（mb.target{ base_url = sim.base_url }）会与它关联，t:sim_truth 在那里同样可用。",
            SimOptions
        ),
        e!(
            "sim:steps",
            "sim:steps(): every step this simulator's step engines ran, as t:sim_steps() (an error for the fixed engine, which keeps no steps).",
            "sim:steps()：这个模拟服务器的 step 引擎跑过的每一步，同 t:sim_steps()（fixed 引擎不记步骤，调用会报错）。"
        ),
        e!(
            "sim:truth",
            "sim:truth(request_id): what this simulator recorded it sent for one request, as t:sim_truth(); nil if it kept nothing.",
            "sim:truth(request_id)：这个模拟服务器为一个请求记录的真实发送情况，同 t:sim_truth()；没有记录则为 nil。"
        ),
        e!(
            "mb.tokenizer",
            "mb.tokenizer(spec [, {revision}]): a tokenizer.json, a model directory, a GGUF model file, a model id (local cache, else the Hub), or \"words\".",
            "mb.tokenizer(spec [, {revision}])：tokenizer.json、模型目录、GGUF 模型文件、模型 id（先查本地缓存，没有则从 Hub 下载），或 \"words\"。",
            TokenizerOpts
        ),
        e!(
            "mb.dataset.random",
            "Random-token prompts exactly input_len long (vLLM's random dataset). Also takes the common dataset options. The prompts are made of the tokenizer's whole-word tokens (\" moon\"), each checked once to encode back to itself; the checked list is kept in ~/.cache/moonbench/word-pools/ ($XDG_CACHE_HOME/moonbench/word-pools/), named by a hash of the tokenizer file, so later runs skip the check.",
            "随机 token 提示词，长度恰为 input_len（vLLM 的 random）。另有数据集通用选项。提示词由分词器的整词 token（如 \" moon\"）组成，每个都先检查一次能否编码回它自己；检查过的列表存放在 ~/.cache/moonbench/word-pools/（或 $XDG_CACHE_HOME/moonbench/word-pools/），以分词器文件的哈希命名，之后的运行就不必再查。",
            random::RandomSpec
        ),
        e!(
            "mb.dataset.random_rerank",
            "One random query and n random documents, batch_size documents per request, for a reranker (vLLM's random-rerank). Requests carry texts = { query, doc1, ... }.",
            "一个随机查询和 n 个随机文档，每个请求 batch_size 个文档，用于重排序模型（vLLM 的 random-rerank）。请求的 texts = { 查询, 文档1, ... }。",
            random_rerank::RandomRerankSpec
        ),
        e!(
            "mb.dataset.sharegpt",
            "ShareGPT conversations: the first two turns as prompt and reference answer.",
            "ShareGPT 对话：前两轮作提示与参考回答。",
            sharegpt::ShareGptSpec
        ),
        e!(
            "mb.dataset.sonnet",
            "vLLM's sonnet dataset (bundled): instruction + shared prefix lines + random lines.",
            "vLLM 的 sonnet 数据集（已内置）：固定指令 + 共享前缀行 + 随机行。",
            sonnet::SonnetSpec
        ),
        e!(
            "mb.dataset.burstgpt",
            "A BurstGPT trace CSV: each row's request and response lengths.",
            "BurstGPT 轨迹 CSV：每行的请求/回答长度。",
            burstgpt::BurstGptSpec
        ),
        e!(
            "mb.dataset.custom",
            "JSON lines of {\"prompt\"} or {\"messages\"}, optionally \"output_tokens\".",
            "JSONL：每行 {\"prompt\"} 或 {\"messages\"}，可带 \"output_tokens\"。",
            custom::CustomSpec
        ),
        e!(
            "mb.dataset.custom_image",
            "vLLM's custom_image: JSON lines of {\"prompt\", \"image_files\"} or {\"content\": [text and image parts]}, each one chat message.",
            "vLLM 的 custom_image：JSONL，每行 {\"prompt\", \"image_files\"} 或 {\"content\": [文字与图片片段]}，各成一条对话消息。",
            custom::CustomImageSpec
        ),
        e!(
            "mb.dataset.custom_audio",
            "vLLM's custom_audio: JSON lines of {\"prompt\", \"audio\": \"clip.wav\"} (WAV or FLAC), for backend openai-audio (transcriptions) or a chat backend (an input_audio part).",
            "vLLM 的 custom_audio：JSONL，每行 {\"prompt\", \"audio\": \"clip.wav\"}（WAV 或 FLAC），用于 openai-audio 接口（语音转写）或对话接口（input_audio 片段）。",
            audio::CustomAudioSpec
        ),
        e!(
            "mb.dataset.hf",
            "A Hugging Face dataset vLLM knows by id (path: a Hub id, a folder or a Parquet/JSONL/JSON file), its prompts made as vLLM makes them.",
            "vLLM 认识的 Hugging Face 数据集（path：Hub id、文件夹或 Parquet/JSONL/JSON 文件），按 vLLM 的方式构造提示。",
            hf::HfSpec
        ),
        e!(
            "mb.dataset.prefix_repetition",
            "num_prefixes shared prefixes, each with different suffixes (prefix caching).",
            "若干共享前缀，每个配不同后缀（测前缀缓存）。",
            prefix_repetition::PrefixRepetitionSpec
        ),
        e!(
            "mb.dataset.mooncake",
            "A Mooncake trace: blocks with equal hash_ids have equal content; requests carry timestamps.",
            "Mooncake 轨迹：hash_ids 相同的块内容相同；请求带时间戳。",
            mooncake::MooncakeSpec
        ),
        e!(
            "mb.dataset.*",
            "Options every dataset takes besides its own.",
            "每个数据集都接受的通用选项。",
            DatasetCommon
        ),
        e!(
            "mb.dataset.from_table",
            "mb.dataset.from_table(list [, tokenizer]): a request set from Lua tables (each as below) or strings.",
            "mb.dataset.from_table(列表 [, 分词器])：用 Lua 表（格式见下）或字符串组成请求集。",
            RequestOpts
        ),
        e!(
            "mb.arrival.poisson",
            "Poisson (gamma) arrivals at a mean rate.",
            "泊松（gamma）到达，平均速率 rate。",
            PoissonOpts
        ),
        e!(
            "mb.arrival.constant",
            "Evenly spaced arrivals.",
            "匀速到达。",
            ConstantOpts
        ),
        e!(
            "mb.arrival.infinite",
            "mb.arrival.infinite(): everything at time 0 (vLLM's --request-rate inf).",
            "mb.arrival.infinite()：全部在 0 时刻发出。"
        ),
        e!(
            "mb.arrival.times",
            "mb.arrival.times{ t1, t2, ... }: send times in seconds.",
            "mb.arrival.times{ t1, t2, ... }：直接给出发送时刻（秒）。"
        ),
        e!(
            "mb.arrival.trace",
            "Replays a trace's timestamps.",
            "按轨迹的时间戳回放。",
            TraceOpts
        ),
        e!(
            "mb.arrival.ramp",
            "A rate that moves from `from` to `to` over time or over requests.",
            "速率从 from 变到 to（按时间或按请求序号）。",
            RampOpts
        ),
        e!(
            "mb.arrival.steps",
            "mb.arrival.steps{ {rate=, duration=}, ..., seed = }: one rate per step.",
            "mb.arrival.steps{ {rate=, duration=}, ... }：每级一个速率。",
            StepsOpts
        ),
        e!(
            "mb.arrival.steps (each step)",
            "One step.",
            "一级。",
            StepOpts
        ),
        e!(
            "mb.run",
            "mb.run{...}: an open-loop run; returns the result object. Also takes the run options and the result options. An error in on_response raises an error object whose .result is the result.",
            "mb.run{...}：开环运行，返回结果对象；另有运行通用选项与结果选项。on_response 出错时抛出的错误对象带 .result。",
            RunOpts
        ),
        e!(
            "mb.users",
            "mb.users{...}: closed-loop virtual users (each a coroutine); returns the result object. Also takes the run options and the result options.",
            "mb.users{...}：闭环虚拟用户（每个是一个协程），返回结果对象；另有运行通用选项与结果选项。",
            UsersOpts
        ),
        e!(
            "run options",
            "Taken by mb.run and mb.users.",
            "mb.run 与 mb.users 都接受。",
            MeasureOpts
        ),
        e!(
            "mb.stop",
            "mb.stop([reason]): ends the innermost run in progress gracefully (from on_response or a scenario).",
            "mb.stop([原因])：平稳结束当前运行（在 on_response 或 scenario 里调用）。"
        ),
        e!(
            "result options",
            "Taken by mb.run, mb.users, res:summary and res:save.",
            "mb.run、mb.users、res:summary、res:save 都接受。",
            ResultOpts
        ),
        e!(
            "res:summary",
            "res:summary{...}: the summary (vLLM's keys and moonbench's): times in ms. Takes the result options.",
            "res:summary{...}：汇总（vLLM 的键与 moonbench 的键），时间单位 ms；接受结果选项。",
            SummaryOpts
        ),
        e!(
            "res:save",
            "res:save([path], {...}): writes vLLM's result JSON; returns the path. Also takes the result options.",
            "res:save([路径], {...})：写 vLLM 格式的结果 JSON，返回路径；另有结果选项。",
            SaveOpts
        ),
        e!(
            "res:save_pytorch",
            "res:save_pytorch(path, {...}): vLLM's PyTorch benchmark format.",
            "res:save_pytorch(路径, {...})：vLLM 的 PyTorch 基准格式。",
            SavePytorchOpts
        ),
        e!(
            "res:plot_timeline",
            "res:plot_timeline(path, {...}): an HTML page of every request on one time axis, its tokens coloured by ITL (vLLM's --plot-timeline); returns the path.",
            "res:plot_timeline(路径, {...})：把所有请求画在同一时间轴上的 HTML 页面，token 按 ITL 着色（vLLM 的 --plot-timeline）；返回路径。",
            PlotTimelineOpts
        ),
        e!(
            "res:plot_dataset_stats",
            "res:plot_dataset_stats(path): an HTML page of histograms of the prompt, output and total tokens sent (vLLM's --plot-dataset-stats); returns the path.",
            "res:plot_dataset_stats(路径)：所发请求的输入、输出与总 token 数直方图 HTML 页面（vLLM 的 --plot-dataset-stats）；返回路径。"
        ),
        e!(
            "res:records",
            "res:records{...}: one table per request (see Records), in schedule order.",
            "res:records{...}：每个请求一条记录（见“记录”），按调度顺序。",
            RecordsOpts
        ),
        e!(
            "res:print",
            "res:print{...}: vLLM's result table, then moonbench's sections.",
            "res:print{...}：打印 vLLM 风格结果表与 moonbench 的各节。",
            PrintOpts
        ),
        e!(
            "res:server_metrics",
            "res:server_metrics(): the server's own /metrics over the run, or nil.",
            "res:server_metrics()：运行期间服务器自身的 /metrics，没有则为 nil。"
        ),
        e!(
            "res:default_filename",
            "res:default_filename(): vLLM's result file name for this run.",
            "res:default_filename()：vLLM 风格的结果文件名。"
        ),
        e!(
            "res.partial / res.stopped / res.duration / res.model",
            "Interrupted by Ctrl-C; why the script stopped it; seconds measured; the model named.",
            "是否被 Ctrl-C 中断；脚本结束运行的原因；测量时长（秒）；模型名。"
        ),
        e!(
            "tok:encode / tok:decode / tok:count",
            "Token ids of a text, the text of ids, the count of a text's tokens.",
            "文本的 token id、id 对应的文本、文本的 token 数。"
        ),
        e!(
            "tok:apply_chat_template",
            "tok:apply_chat_template(messages, {...}): the prompt text a server would build.",
            "tok:apply_chat_template(消息, {...})：服务器会生成的提示文本。",
            ChatTemplateOpts
        ),
        e!(
            "tok:has_chat_template / tok.name / tok.vocab_size",
            "Whether it has a chat template; its name; its vocabulary size.",
            "是否有对话模板；名字；词表大小。"
        ),
        e!(
            "reqs[i] / #reqs / reqs:timestamps() / reqs:to_token_ids(tok) / reqs:apply_chat_template(tok) / reqs:stats()",
            "A request set: 1-based like a Lua array; its timestamps; as token ids; templated; its shape: { requests, prompt_tokens = { count, total, min, mean, median, p99, max }, max_tokens = {...} }.",
            "请求集：像 Lua 数组一样从 1 开始；时间戳；转成 token id；套模板；形状统计：{ requests, prompt_tokens = { count, total, min, mean, median, p99, max }, max_tokens = {...} }。"
        ),
        e!(
            "reqs:with_images",
            "reqs:with_images{...}: a copy of the request set with synthetic random-pixel JPEG images after each text prompt, as chat content parts (vLLM's random-mm dataset).",
            "reqs:with_images{...}：返回请求集的副本，每个文本提示后附上随机像素的 JPEG 图片，作为对话内容的一部分（vLLM 的 random-mm 数据集）。",
            crate::dataset::random_mm::ImagesSpec
        ),
        e!(
            "reqs:assign_models",
            "reqs:assign_models{...}: a copy of the request set in which each request names one of `models` as its model (vLLM's --lora-modules); reqs:apply_chat_template(tok, opts) takes the options of tok:apply_chat_template.",
            "reqs:assign_models{...}：返回请求集的副本，每个请求以 models 中的一个作为 model（vLLM 的 --lora-modules）；reqs:apply_chat_template(tok, 选项) 的选项同 tok:apply_chat_template。",
            AssignModelsOpts
        ),
        e!(
            "u:chat / u:complete",
            "u:chat{...} / u:complete{...}: one request of a virtual user (a request table); waits for the answer and returns the record's light form: success, status, error, error_kind, text, ttft, ttfa, tpot, e2el, itls, prompt_tokens, output_tokens, reasoning_tokens, request_id, user, conversation, turn (same names and units as Records; the full record is in res:records()).",
            "u:chat{...} / u:complete{...}：虚拟用户发一个请求（请求表），等回答并返回记录的精简版：success、status、error、error_kind、text、ttft、ttfa、tpot、e2el、itls、prompt_tokens、output_tokens、reasoning_tokens、request_id、user、conversation、turn（字段名与单位同“记录”；完整记录见 res:records()）。",
            RequestOpts
        ),
        e!(
            "u:prompt / u:sleep / u.id / u.iteration",
            "u:prompt(n): n tokens of random text; u:sleep(s); the user's number and iteration (1-based).",
            "u:prompt(n)：n 个 token 的随机文本；u:sleep(秒)；用户编号与第几遍（从 1 开始）。"
        ),
        e!(
            "mb.slo_search",
            "The highest load (rate or concurrency) at which `goal` of requests meet the SLOs.",
            "找出至少 goal 比例的请求满足 SLO 的最大负载。",
            SloSearchOpts
        ),
        e!(
            "mb.rate_sweep",
            "guidellm-style sweep: synchronous, throughput, then rates evenly in between.",
            "像 guidellm 的扫描：同步、最大吞吐，再在两者之间均匀取速率。",
            RateSweepOpts
        ),
        e!(
            "mb.rand.seed / uniform / exponential / normal / choice",
            "Lua-side random numbers (think times, lengths).",
            "Lua 里的随机数（思考时间、长度）。"
        ),
        e!(
            "mb.env / mb.now / mb.time / mb.date / mb.sleep / mb.log",
            "Environment variable; monotonic seconds; Unix seconds; YYYYmmdd-HHMMSS; sleep; a log line.",
            "环境变量；单调时钟（秒）；Unix 秒；日期串；暂停；日志。"
        ),
        e!(
            "mb.shard",
            "mb.shard(): { index, count } of this process's shard of a sharded run (--shard I/N, MOONBENCH_SHARD, JOB_COMPLETION_INDEX with --shards N, or Slurm's SLURM_PROCID/SLURM_NTASKS); { index = 0, count = 1 } otherwise. mb.run sends only this shard's requests (shard = false: all).",
            "mb.shard()：分片运行时本进程的 { index, count }（来自 --shard I/N、MOONBENCH_SHARD、JOB_COMPLETION_INDEX 加 --shards N，或 Slurm 的 SLURM_PROCID/SLURM_NTASKS）；不分片时为 { index = 0, count = 1 }。mb.run 只发送本分片的请求（shard = false 则全发）。"
        ),
        e!(
            "mb.mkdir / mb.exists / mb.bundled / mb.image_data_url",
            "Make a directory; whether a path exists; a bundled file's text; an image as a data URL.",
            "建目录；路径是否存在；内置文件内容；图片转 data URL。"
        ),
        e!(
            "mb.suggest / mb.interrupted / mb.script / mb.http_get",
            "Nearest spelling; whether Ctrl-C was pressed; run another script; a bounded HTTP GET.",
            "最接近的拼写；是否按过 Ctrl-C；运行另一个脚本；有超时的 HTTP GET。"
        ),
        e!(
            "mb.aggregate",
            "mb.aggregate(dir [, out], {...}): result files to one table (as `moonbench aggregate`).",
            "mb.aggregate(目录 [, 输出], {...})：把结果文件汇总成表格。",
            AggregateOpts
        ),
        e!(
            "mb.default_lang",
            "mb.default_lang(): \"zh\" or \"en\": MOONBENCH_LANG if set, else Chinese when the locale (LC_ALL, LC_MESSAGES, LANG) starts with zh; what every --lang flag defaults to.",
            "mb.default_lang()：返回 \"zh\" 或 \"en\"：优先看 MOONBENCH_LANG，否则区域设置（LC_ALL、LC_MESSAGES、LANG）以 zh 开头时为中文；所有 --lang 参数的默认值都来自它。"
        ),
        e!(
            "mb.tr",
            "mb.tr(english [, lang]): the text in lang (\"en\" or \"zh\"; default mb.default_lang()) from moonbench's one message catalogue, src/i18n/messages.zh.tsv; a text it lacks comes back unchanged. Keep %d/%s in the text and format after: string.format(mb.tr(\"%d requests\", lang), n).",
            "mb.tr(英文 [, lang])：从 moonbench 唯一的消息目录 src/i18n/messages.zh.tsv 取出该文本在 lang（\"en\" 或 \"zh\"；默认 mb.default_lang()）下的译文；目录里没有的原样返回。%d/%s 留在文本里，翻译后再格式化：string.format(mb.tr(\"%d requests\", lang), n)。"
        ),
        e!(
            "mb.model_short / mb.run_folder / mb.run_folders",
            "mb.model_short(model): the seed's short model name (the last path part, without -awq/-gptq/-gguf); mb.run_folder(parent, model): creates parent/{model_short}_{YYYYmmdd_HHMMSS} (with _2, _3, ... if that second's exists) and returns its path; mb.run_folders(parent): the folders under parent that hold result files, newest first, as { path, name, json_files } (what aggregate and report read with no path).",
            "mb.model_short(模型)：原工具包的模型短名（路径最后一段，去掉 -awq/-gptq/-gguf）；mb.run_folder(父目录, 模型)：创建 父目录/{模型短名}_{年月日_时分秒}（同一秒已存在时加 _2、_3……）并返回路径；mb.run_folders(父目录)：父目录下含结果文件的目录，最新的在前，每项为 { path, name, json_files }（aggregate 与 report 不给路径时读的就是最新的那个）。"
        ),
        e!(
            "mb.read_result",
            "mb.read_result(path): a result file as a table, or nil and why it is not one (read as aggregate, report and compare read it).",
            "mb.read_result(路径)：把结果文件读成表；不是结果文件时返回 nil 和原因（与 aggregate、report、compare 同一个读法）。"
        ),
        e!(
            "mb.yaml.load / mb.yaml.decode / mb.json.encode / mb.json.decode / mb.json.null",
            "YAML with line numbers; JSON both ways; JSON null.",
            "带行号的 YAML；JSON 编解码；JSON null。"
        ),
    ]
}

/// The fields of a request record (`res:records()`, `records_file`,
/// `on_response`): name, type and unit, meaning.
pub const RECORD_FIELDS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "index",
        "integer, 0-based",
        "position in the schedule (warm-ups first)",
        "整数，从 0 开始",
        "在调度中的位置（预热请求在前）",
    ),
    (
        "request_id",
        "string",
        "the x-request-id sent",
        "字符串",
        "发送的 x-request-id",
    ),
    (
        "warmup",
        "boolean",
        "a warm-up request, left out of statistics",
        "布尔",
        "预热请求，不计入统计",
    ),
    (
        "success",
        "boolean",
        "the request succeeded",
        "布尔",
        "请求成功",
    ),
    (
        "status",
        "integer",
        "HTTP status (0: no answer)",
        "整数",
        "HTTP 状态码（0：没有应答）",
    ),
    (
        "error_kind",
        "string or nil",
        "kind of failure, the same name as in the summary's errors_by_kind: http_STATUS (http_500, http_429, ...), timeout, connection, tls, protocol, server, cancelled, incomplete",
        "字符串或 nil",
        "失败的类别，与汇总里 errors_by_kind 的名字相同：http_状态码（http_500、http_429 等）、timeout、connection、tls、protocol、server、cancelled、incomplete",
    ),
    (
        "error",
        "string or nil",
        "what went wrong",
        "字符串或 nil",
        "出了什么错",
    ),
    (
        "scheduled_time",
        "seconds from the run's start",
        "when the schedule said to send",
        "从运行开始算起的秒数",
        "调度计划的发送时刻",
    ),
    (
        "dispatch_time",
        "seconds from the run's start",
        "when the dispatcher released it",
        "从运行开始算起的秒数",
        "调度器放行它的时刻",
    ),
    (
        "start_time",
        "seconds from the run's start",
        "when its first byte was written",
        "从运行开始算起的秒数",
        "写出第一个字节的时刻",
    ),
    (
        "end_time",
        "seconds from the run's start",
        "when its last byte arrived",
        "从运行开始算起的秒数",
        "最后一个字节到达的时刻",
    ),
    (
        "ttft",
        "seconds or nil",
        "time to first token (reasoning included)",
        "秒或 nil",
        "首 token 延迟（含推理内容）",
    ),
    (
        "ttfa",
        "seconds or nil",
        "time to the first answer (non-reasoning) token",
        "秒或 nil",
        "到第一个回答（非推理）token 的时间",
    ),
    (
        "reasoning_tokens",
        "integer",
        "tokens of reasoning content",
        "整数",
        "推理内容的 token 数",
    ),
    (
        "user / conversation / turn",
        "integers, 1-based",
        "virtual users only: who, which conversation, which turn",
        "整数，从 1 开始",
        "仅虚拟用户：哪个用户、哪段对话、第几轮",
    ),
    (
        "tpot",
        "seconds or nil",
        "time per output token after the first",
        "秒或 nil",
        "首 token 之后每个输出 token 的时间",
    ),
    ("e2el", "seconds", "end-to-end latency", "秒", "端到端延迟"),
    (
        "schedule_lag",
        "seconds",
        "how late it was sent against the schedule",
        "秒",
        "相对调度计划晚发了多久",
    ),
    (
        "prompt_tokens",
        "integer",
        "prompt length by the dataset's tokenizer",
        "整数",
        "按数据集分词器统计的提示长度",
    ),
    (
        "server_prompt_tokens",
        "integer or nil",
        "prompt length the server reported",
        "整数或 nil",
        "服务器报告的提示长度",
    ),
    (
        "output_tokens",
        "integer",
        "output tokens (the server's count where it gave one)",
        "整数",
        "输出 token 数（服务器给出计数时用它的）",
    ),
    (
        "server_output_tokens",
        "integer or nil",
        "output tokens the server reported",
        "整数或 nil",
        "服务器报告的输出 token 数",
    ),
    (
        "output_tokens_source",
        "string",
        "where output_tokens came from",
        "字符串",
        "output_tokens 的来源",
    ),
    (
        "expected_output_tokens",
        "integer or nil",
        "the exact length asked for (max_tokens with ignore_eos); shorter answers are counted in the summary's short_outputs",
        "整数或 nil",
        "要求的确切长度（带 ignore_eos 的 max_tokens）；更短的回答计入汇总的 short_outputs",
    ),
    (
        "streamed",
        "boolean",
        "the answer was streamed",
        "布尔",
        "回答是流式的",
    ),
    (
        "new_connection",
        "boolean",
        "a new connection was opened for it",
        "布尔",
        "为它新建了连接",
    ),
    (
        "server_timing",
        "table or nil",
        "the server's own timing (llama.cpp's timings)",
        "表或 nil",
        "服务器自己的计时（llama.cpp 的 timings）",
    ),
    (
        "chunk_times",
        "list of seconds from start_time",
        "arrival of each token-bearing chunk",
        "秒的列表，从 start_time 算起",
        "每个含 token 分块的到达时刻",
    ),
    (
        "chunk_tokens",
        "list of integers",
        "tokens in each chunk",
        "整数列表",
        "每个分块里的 token 数",
    ),
    (
        "itls",
        "list of seconds",
        "inter-token latencies (vLLM's definition)",
        "秒的列表",
        "token 间延迟（vLLM 的定义）",
    ),
    (
        "text",
        "string",
        "the generated text (in `res:records()` only with `keep_text = true`)",
        "字符串",
        "生成的文本（`res:records()` 里只在 `keep_text = true` 时有）",
    ),
];

/// The reference page in English (`zh`: Chinese).
pub fn markdown(zh: bool) -> String {
    let mut out = String::new();
    if zh {
        out.push_str("# moonbench Lua API 参考\n\n");
        out.push_str("本页由代码生成（`src/script/reference.rs`，选项来自 Rust 里的选项结构体），与实现保持一致。\n");
        out.push_str("选项表里写错的键会立即报错并提示最接近的键；类型不对会说出是哪个选项。\n");
        out.push_str("时间：记录里是秒，汇总里是毫秒（键名以 `_ms` 结尾）。下标：请求集与用户编号从 1 开始，记录的 `index` 从 0 开始。\n");
        out.push('\n');
        out.push_str("`local mb = require \"moonbench\"`\n\n");
    } else {
        out.push_str("# moonbench Lua API reference\n\n");
        out.push_str("Generated from the code (`src/script/reference.rs`; the options come from the Rust option structs), so it matches the implementation.\n");
        out.push_str("A misspelled key in any option table is an error that suggests the nearest key; a wrong type names the option.\n");
        out.push_str("Times: seconds in records, milliseconds in summaries (keys ending in `_ms`). Indices: request sets and user numbers are 1-based; a record's `index` is 0-based.\n\n");
        out.push_str("`local mb = require \"moonbench\"`\n\n");
    }
    for e in entries() {
        out.push_str(&format!(
            "## `{}`\n\n{}\n\n",
            e.name,
            if zh { e.zh } else { e.en }
        ));
        if let Some(f) = e.options {
            out.push_str(&options_table(&f(), zh));
        }
    }
    out.push_str(if zh {
        "## 记录 Records\n\n"
    } else {
        "## Records\n\n"
    });
    out.push_str(if zh {
        "`res:records()`、`records_file` 的每一行、`on_response(r)` 的参数都是这样一条记录（按调度顺序）。\n\n| 字段 | 类型与单位 | 含义 |\n|---|---|---|\n"
    } else {
        "What `res:records()` lists, each line of a `records_file`, and `on_response(r)`'s argument (in schedule order).\n\n| field | type and unit | meaning |\n|---|---|---|\n"
    });
    for (name, ty, doc, ty_zh, doc_zh) in RECORD_FIELDS {
        let (ty, doc) = if zh { (ty_zh, doc_zh) } else { (ty, doc) };
        out.push_str(&format!("| `{name}` | {ty} | {doc} |\n"));
    }
    out.push_str(&result_section(zh));
    out
}

/// The summary and result-file keys ([`RESULT_FIELDS`]) and the metrics they name.
fn result_section(zh: bool) -> String {
    let mut out = String::from(if zh {
        "\n## 汇总与结果文件 Summary and result file\n\n`res:summary()` 返回、`res:save` 与 `moonbench bench` 写出的键（结果文件是一行 JSON）。`M` 代表下表的某个指标，`P` 代表百分位（如 `99`、`99.9`）。时间单位毫秒（`_ms`）或秒（`s`）。\n\n| 键 | 类型或单位 | 含义 |\n|---|---|---|\n"
    } else {
        "\n## Summary and result file\n\nThe keys `res:summary()` returns and `res:save` and `moonbench bench` write (a result file is one line of JSON). `M` stands for a metric of the table below, `P` for a percentile label (`99`, `99.9`). Times in milliseconds (`_ms`) or seconds (`s`).\n\n| key | type or unit | meaning |\n|---|---|---|\n"
    });
    for (key, unit, en, zh_text) in RESULT_FIELDS {
        let unit = if zh { type_zh(unit) } else { unit.to_string() };
        let doc = if zh { zh_text } else { en };
        let keys: Vec<String> = key.split(" / ").map(|k| format!("`{k}`")).collect();
        out.push_str(&format!("| {} | {unit} | {doc} |\n", keys.join(" / ")));
    }
    out.push_str(if zh {
        "\n| 指标 M | 含义 |\n|---|---|\n"
    } else {
        "\n| metric M | meaning |\n|---|---|\n"
    });
    for (key, en, zh_text) in METRIC_DOCS {
        out.push_str(&format!(
            "| `{key}` | {} |\n",
            if zh { zh_text } else { en }
        ));
    }
    out
}

fn options_table(schema: &Value, zh: bool) -> String {
    let Some(props) = schema["properties"].as_object() else {
        return String::new();
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let defs = &schema["$defs"];
    let mut out = String::from(if zh {
        "| 选项 | 类型 | 默认 | 说明 |\n|---|---|---|---|\n"
    } else {
        "| option | type | default | description |\n|---|---|---|---|\n"
    });
    for (name, p) in props {
        let ty = type_of(p, defs);
        let ty = if zh { type_zh(&ty) } else { ty };
        let default = match &p["default"] {
            Value::Null => {
                if required.contains(&name.as_str()) {
                    if zh { "必填" } else { "required" }.to_string()
                } else {
                    String::new()
                }
            }
            v => format!("`{v}`"),
        };
        let en = description(p);
        let doc = if zh {
            crate::i18n::options_zh()
                .get(en.as_str())
                .map(|z| z.to_string())
                .unwrap_or(en)
        } else {
            en
        }
        .replace('|', "\\|");
        out.push_str(&format!("| `{name}` | {ty} | {default} | {doc} |\n"));
    }
    out.push('\n');
    out
}

/// An option's English description, on one line (as the catalogue keys it).
fn description(p: &Value) -> String {
    p["description"].as_str().unwrap_or("").replace('\n', " ")
}

/// A type from [`type_of`] in Chinese (quoted enum values stay as they are).
fn type_zh(ty: &str) -> String {
    const WORDS: [(&str, &str); 14] = [
        ("list of lists of ", "列表的列表："),
        ("list of ", "列表："),
        ("tokens", "token 数"),
        (" or null", " 或 null"),
        (" or ", " 或 "),
        ("integer", "整数"),
        ("numbers", "数值"),
        ("number", "数值"),
        ("strings", "字符串"),
        ("string", "字符串"),
        ("boolean", "布尔"),
        ("tables", "表"),
        ("table", "表"),
        ("Lua value", "Lua 值"),
    ];
    ty.split('"')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                return format!("\"{part}\"");
            }
            WORDS
                .iter()
                .fold(part.to_string(), |acc, (en, zh)| acc.replace(en, zh))
        })
        .collect()
}

/// A property's type in Lua terms.
fn type_of(p: &Value, defs: &Value) -> String {
    if let Some(r) = p["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        let d = &defs[name];
        if let Some(vs) = d["enum"].as_array() {
            return vs
                .iter()
                .map(|v| format!("\"{}\"", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" \\| ");
        }
        if d["oneOf"].is_array() {
            let vs: Vec<String> = d["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v["const"].as_str().or(v["enum"][0].as_str()))
                .map(|s| format!("\"{s}\""))
                .collect();
            if !vs.is_empty() {
                return vs.join(" \\| ");
            }
        }
        return match d["type"].as_str() {
            Some("lua") => "Lua value".into(),
            Some("object") => "table".into(),
            _ => type_of(d, defs),
        };
    }
    if let Some(any) = p["anyOf"].as_array() {
        let parts: Vec<String> = any
            .iter()
            .filter(|v| v["type"] != "null")
            .map(|v| type_of(v, defs))
            .collect();
        return parts.join(" or ");
    }
    let one = |t: &str| -> String {
        match t {
            "integer" => "integer".into(),
            "number" => "number".into(),
            "string" => "string".into(),
            "boolean" => "boolean".into(),
            "array" => format!("list of {}", type_of(&p["items"], defs)),
            "object" => "table".into(),
            "lua" => "Lua value".into(),
            other => other.into(),
        }
    };
    match &p["type"] {
        Value::String(t) => one(t),
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .filter(|t| *t != "null")
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/lua-api.md and docs/zh/lua-api.md are what the code generates
    /// (`MOONBENCH_BLESS=1 cargo test reference` rewrites them).
    #[test]
    fn reference_pages_are_up_to_date() {
        let root = env!("CARGO_MANIFEST_DIR");
        for (zh, path) in [(false, "docs/lua-api.md"), (true, "docs/zh/lua-api.md")] {
            let want = markdown(zh);
            let full = format!("{root}/{path}");
            if std::env::var("MOONBENCH_BLESS").is_ok() {
                std::fs::create_dir_all(std::path::Path::new(&full).parent().unwrap()).unwrap();
                std::fs::write(&full, &want).unwrap();
            }
            let have = std::fs::read_to_string(&full).unwrap_or_default();
            assert!(
                have == want,
                "{path} is out of date: run MOONBENCH_BLESS=1 cargo test reference"
            );
        }
    }

    /// Every option has its Chinese in `src/i18n/options.zh.tsv`, and every line
    /// there is an option's current English.
    #[test]
    fn every_option_has_its_chinese() {
        let cat = crate::i18n::options_zh();
        let mut used = std::collections::BTreeSet::new();
        let mut missing = Vec::new();
        for e in entries() {
            let Some(f) = e.options else { continue };
            let s = f();
            for (name, p) in s["properties"].as_object().into_iter().flatten() {
                let en = description(p);
                assert!(
                    !en.is_empty(),
                    "{}: option {name} has no doc comment",
                    e.name
                );
                match cat.get_key_value(en.as_str()) {
                    Some((k, _)) => {
                        used.insert(*k);
                    }
                    None => missing.push(format!("{}.{name}: {en}", e.name)),
                }
            }
        }
        assert!(
            missing.is_empty(),
            "no Chinese in src/i18n/options.zh.tsv for:\n{}",
            missing.join("\n")
        );
        let stale: Vec<_> = cat.keys().filter(|k| !used.contains(*k)).collect();
        assert!(stale.is_empty(), "lines no option uses any more: {stale:?}");
    }

    /// Every record field the code writes is documented, and nothing else.
    #[test]
    fn every_record_field_is_documented() {
        let rec = crate::metrics::RequestRecord {
            user: Some(Default::default()),
            server_timing: Some(Default::default()),
            ..Default::default()
        };
        let v = crate::engine::records::record_json(&rec, 0);
        let written: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let documented: Vec<&str> = RECORD_FIELDS
            .iter()
            .flat_map(|(n, ..)| n.split(" / "))
            .collect();
        for k in &written {
            assert!(
                documented.contains(k),
                "record field {k} is not in RECORD_FIELDS"
            );
        }
        for k in &documented {
            assert!(
                written.contains(k),
                "RECORD_FIELDS lists {k}, which records do not have"
            );
        }
    }

    /// The names an entry documents: `a / b / c`, where a part without a table
    /// prefix takes the first part's (`mb.rand.seed / uniform` = mb.rand.uniform).
    fn documented_names() -> Vec<String> {
        let mut out = Vec::new();
        for e in entries() {
            let parts: Vec<&str> = e.name.split(" / ").collect();
            let first = parts[0];
            let prefix = first.rfind(['.', ':']).map_or("", |i| &first[..=i]);
            for p in parts {
                let p = p.split(['(', '[', ' ']).next().unwrap_or(p);
                if p.starts_with("mb.") || p.contains([':', '.']) {
                    out.push(p.to_string());
                } else {
                    out.push(format!("{prefix}{p}"));
                }
            }
        }
        out
    }

    /// Every public name of `require "moonbench"` (and of its nested tables) is
    /// in the reference.
    #[test]
    fn every_api_name_is_documented() {
        let listed = super::super::eval_snippet(
            r#"local mb = require "moonbench"
            local out = {}
            for k, v in pairs(mb) do
              if type(v) == "table" then
                for k2 in pairs(v) do out[#out + 1] = "mb." .. k .. "." .. k2 end
              else
                out[#out + 1] = "mb." .. k
              end
            end
            table.sort(out)
            return table.concat(out, " ")"#,
        )
        .unwrap();
        let documented = documented_names();
        let missing: Vec<&str> = listed
            .split(' ')
            .filter(|n| !documented.iter().any(|d| d == n))
            .collect();
        assert!(missing.is_empty(), "not in the reference: {missing:?}");
    }
}
