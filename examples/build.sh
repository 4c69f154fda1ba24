#!/usr/bin/env bash
# Builds the example and test guests into examples/wasm/ (committed, so tests
# need no compiler). Needs Debian's clang-14 lld-14 wasi-libc
# libclang-rt-14-dev-wasm32 and wabt; installs them when run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need=(clang-14 wat2wasm)
for tool in "${need[@]}"; do
  if ! command -v "$tool" >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends clang-14 lld-14 wasi-libc \
        libclang-rt-14-dev-wasm32 wabt >/dev/null
      break
    fi
    echo "build.sh: $tool is missing (apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 wabt)" >&2
    exit 1
  fi
done
mkdir -p "$here/wasm"
# clang runs wasm-opt after linking when it finds one on PATH (binaryen is
# installed for the fuzz tests), which would change the committed modules;
# clang therefore runs from its real folder (it looks beside itself too)
# with a PATH of just its linker.
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
ln -s "$(command -v wasm-ld-14)" "$tools/wasm-ld-14"
clang14() { PATH="$tools" "$(readlink -f "$(command -v clang-14)")" "$@"; }
for src in "$here"/src/*.c; do
  name=$(basename "$src" .c)
  clang14 --target=wasm32-wasi --sysroot=/usr -O2 -Wl,--strip-all \
    -o "$here/wasm/$name.wasm" "$src"
done
# The same SHA-256 with SIMD, bulk memory, sign extension and saturating
# conversions enabled, so the fuel instrumenter meets those opcodes in tests.
clang14 --target=wasm32-wasi --sysroot=/usr -O3 -msimd128 -mbulk-memory \
  -msign-ext -mnontrapping-fptoint -Wl,--strip-all \
  -o "$here/wasm/cpu_heavy_simd.wasm" "$here/src/cpu_heavy.c"
for src in "$here"/src/*.wat; do
  name=$(basename "$src" .wat)
  wat2wasm -o "$here/wasm/$name.wasm" "$src"
done
ls -l "$here/wasm"
deno run --allow-read="$here/.." --allow-write="$here/../provider" "$here/embed.ts"
