#!/usr/bin/env bash
# Set up lqbench on a fresh Debian/Ubuntu machine with Python 3.11: a .venv in this
# checkout with lqbench installed (editable). `--test` adds what the tests need:
# Debian's lua5.4 + lua-unit (reference runs), chromium (report screenshot), iproute2 (netns).
#
# llama-cpp-python is compiled here, by us, with flags chosen for this CPU (~8 min on 2 cores),
# into a wheel kept under ~/.cache/lqbench/wheels/<version>-<flags hash>/. We do not leave the
# build to pip: pip's wheel cache reuses a wheel built earlier from the same sdist whatever
# CMAKE_ARGS says now, so a machine that once cached a crashing build would keep it.
#
# The flags: llama.cpp's default native build (-march=native), except on x86-64 CPUs with AMX
# (Xeon Sapphire Rapids and later): llama-cpp-python 0.3.36's AMX kernels segfault there on the
# first decode (ggml_backend_amx_mul_mat), so those get a portable build with every SIMD
# extension the CPU has *but* AMX. llama.cpp's other weight repacking (CPU_REPACK) stays on.
# LQBENCH_LLAMA_CMAKE_ARGS overrides the choice (e.g. "-DGGML_METAL=ON", or "" for native);
# LQBENCH_LLAMA_VERSION picks another llama-cpp-python release.
set -euo pipefail
cd "$(dirname "$0")"
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$want_test" = 1 ] && command -v apt-get >/dev/null; then
  pkgs="lua5.4 lua-unit chromium iproute2"
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip

# ---------------------------------------------------------------- llama-cpp-python
LLAMA_VERSION="${LQBENCH_LLAMA_VERSION:-0.3.36}"

cpu_flags() { grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- || true; }

llama_cmake_args() {
  if [ -n "${LQBENCH_LLAMA_CMAKE_ARGS+set}" ]; then
    echo "$LQBENCH_LLAMA_CMAKE_ARGS"; return
  fi
  local flags; flags=" $(cpu_flags) "
  has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] && has amx_tile; then
    local args="-DGGML_NATIVE=OFF"
    # ggml option : the /proc/cpuinfo flags it needs
    local map="GGML_AVX:avx GGML_AVX2:avx2 GGML_FMA:fma GGML_F16C:f16c GGML_BMI2:bmi2 GGML_AVX_VNNI:avx_vnni
               GGML_AVX512:avx512f,avx512cd,avx512vl,avx512dq,avx512bw GGML_AVX512_VBMI:avx512vbmi
               GGML_AVX512_VNNI:avx512_vnni GGML_AVX512_BF16:avx512_bf16"
    for pair in $map; do
      local opt="${pair%%:*}" need="${pair#*:}"
      if has ${need//,/ }; then args="$args -D$opt=ON"; else args="$args -D$opt=OFF"; fi
    done
    echo "$args -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  fi
}

LLAMA_ARGS="$(llama_cmake_args)"
# Native builds are tied to this CPU, so the key holds the CPU's flags too.
LLAMA_KEY="$(printf '%s|%s|%s|%s' "$LLAMA_VERSION" "$LLAMA_ARGS" "$(uname -m)" "$(cpu_flags)" | sha256sum | cut -c1-12)"
WHEELS="${LQBENCH_WHEEL_CACHE:-$HOME/.cache/lqbench/wheels}/llama-cpp-python-$LLAMA_VERSION-$LLAMA_KEY"
if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "compiling llama-cpp-python $LLAMA_VERSION (${LLAMA_ARGS:-native build}); about 8 minutes on 2 cores"
  rm -rf "$WHEELS.partial"
  CMAKE_ARGS="$LLAMA_ARGS" .venv/bin/python -m pip wheel -q --no-deps --no-cache-dir \
    --no-binary llama-cpp-python "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS.partial"
  rm -rf "$WHEELS" && mv "$WHEELS.partial" "$WHEELS"
fi
if [ "$(cat .venv/.lqbench-llama-build 2>/dev/null)" != "$LLAMA_KEY" ] || ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  .venv/bin/python -m pip install -q --no-deps --force-reinstall "$WHEELS"/llama_cpp_python-*.whl
  echo "$LLAMA_KEY" > .venv/.lqbench-llama-build
fi

if [ "$want_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
echo "lqbench is set up in $(pwd)/.venv (llama-cpp-python $LLAMA_VERSION: ${LLAMA_ARGS:-native build}); check this machine with: .venv/bin/lqbench doctor"
