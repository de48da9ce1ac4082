//! The command line: each subcommand is a few lines that run a bundled script or
//! call the library.

use clap::{Parser, Subcommand};

use crate::script::{self, Source};
use crate::sim::{SimOptions, server};

/// moonbench: a load tester for LLM inference servers, driven by Lua scripts.
#[derive(Parser, Debug)]
#[command(name = "moonbench", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// vLLM-style serving benchmark (flags of vLLM's benchmark_serving.py; see `moonbench bench --help`).
    /// With no --base-url/--host/--port it benchmarks the built-in simulated server.
    #[command(disable_help_flag = true)]
    Bench {
        /// Flags passed to scripts/benchmark_serving.lua.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a Lua workload script: `moonbench run SCRIPT.lua [-- ARGS...]`.
    Run {
        /// Script file (or a bundled script such as examples/quickstart.lua).
        script: String,
        /// Arguments for the script (its `arg` table).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the built-in simulated OpenAI-compatible server.
    ServeSim(ServeSimArgs),
    /// Measure the client's own cost and timing error against the in-process simulator.
    Calibrate(crate::calibrate::CalibrateArgs),
    /// List the bundled scripts and examples, or print one (`moonbench scripts examples/quickstart.lua`).
    Scripts {
        /// A bundled file to print.
        name: Option<String>,
    },
}

/// Flags of `serve-sim`.
#[derive(clap::Args, Debug)]
pub struct ServeSimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Model id to serve.
    #[arg(long, default_value = "moonbench-sim")]
    pub model: String,
    /// Time to first token (ms).
    #[arg(long, default_value_t = 50.0)]
    pub ttft_ms: f64,
    /// Time between tokens (ms).
    #[arg(long, default_value_t = 10.0)]
    pub itl_ms: f64,
    /// Extra TTFT per prompt token (µs).
    #[arg(long, default_value_t = 0.0)]
    pub prefill_us_per_token: f64,
    /// Relative jitter of TTFT and ITL (0.1 = ±10%).
    #[arg(long, default_value_t = 0.0)]
    pub jitter: f64,
    /// Tokens packed into each SSE chunk.
    #[arg(long, default_value_t = 1)]
    pub tokens_per_chunk: u32,
    /// At most this many requests generate at once; others wait.
    #[arg(long)]
    pub max_running: Option<usize>,
    /// Random faults, e.g. `reset=0.01,http500=0.02,stall=0.001`.
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Seed for output lengths, jitter and faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Tokenizer for counting prompt tokens (default: words).
    #[arg(long)]
    pub tokenizer: Option<String>,
}

fn serve_sim(a: ServeSimArgs) -> i32 {
    let opts = SimOptions {
        model: a.model,
        ttft_ms: a.ttft_ms,
        itl_ms: a.itl_ms,
        prefill_us_per_token: a.prefill_us_per_token,
        jitter: a.jitter,
        tokens_per_chunk: a.tokens_per_chunk,
        max_running: a.max_running,
        faults: a.faults,
        seed: a.seed,
        threads: a.threads,
        tokenizer: a.tokenizer,
        ..Default::default()
    };
    let state = match crate::sim::SimState::new(&opts) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("moonbench serve-sim: {e}");
            return 2;
        }
    };
    crate::clock::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads.max(1))
        .thread_name("mb-sim")
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let bind = format!("{}:{}", a.host, a.port);
        let listener = match tokio::net::TcpListener::bind(&bind).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("moonbench serve-sim: cannot listen on {bind}: {e} (is the port in use? try --port 0)");
                return 1;
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(bind);
        println!("moonbench simulated server on http://{addr} (model {}, TTFT {} ms, ITL {} ms); Ctrl-C to stop", opts.model, opts.ttft_ms, opts.itl_ms);
        server::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        0
    })
}

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Bench { args } => {
            let src = Source::Embedded(
                "scripts/benchmark_serving.lua",
                script::embedded("scripts/benchmark_serving.lua").expect("bundled"),
            );
            script::run_script(src, args)
        }
        Command::Run { script: path, args } => {
            let args = if args.first().map(String::as_str) == Some("--") {
                args[1..].to_vec()
            } else {
                args
            };
            match Source::find(&path) {
                Ok(src) => script::run_script(src, args),
                Err(e) => {
                    eprintln!("moonbench run: {e}");
                    2
                }
            }
        }
        Command::ServeSim(a) => serve_sim(a),
        Command::Calibrate(a) => crate::calibrate::main(a),
        Command::Scripts { name } => match name {
            Some(n) => match script::embedded(&n) {
                Some(text) => {
                    print!("{text}");
                    0
                }
                None => {
                    eprintln!(
                        "moonbench scripts: no bundled file '{n}'; run `moonbench scripts` to list them"
                    );
                    2
                }
            },
            None => {
                for n in script::embedded_names() {
                    println!("{n}");
                }
                0
            }
        },
    }
}
