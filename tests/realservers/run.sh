#!/usr/bin/env bash
# The interop suite against real LLM servers (the README's third command):
# builds llama.cpp's llama-server and llama-cpp-python's server into target/realservers
# (cached; about 13 min on 2 cores the first time), then runs tests/interop_real.rs and the
# GGUF tokenizer check against llama.cpp's test vectors (tests/gguf_tokenizers.rs).
#
#   tests/realservers/run.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${MOONBENCH_REALSERVERS:-$PWD/target/realservers}
bash tests/realservers/setup.sh "$dir"
# One test at a time: each starts its own servers, which share the machine's cores.
MOONBENCH_REALSERVERS=$dir cargo test --release --test interop_real --test gguf_tokenizers "$@" -- --ignored --test-threads 1
