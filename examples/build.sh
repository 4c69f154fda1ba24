#!/usr/bin/env bash
# Builds the example and test guests into examples/wasm/ (committed, so tests
# need no compiler). Needs Debian's clang-14 lld-14 wasi-libc
# libclang-rt-14-dev-wasm32 and wabt, and for the Rust guests rustc and
# libstd-rust-dev-wasm32 (Debian's rustc, /usr/bin/rustc: a rustup toolchain
# has no wasm32-wasi standard library here); installs them when run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
packages="clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 wabt rustc libstd-rust-dev-wasm32"
if ! command -v clang-14 >/dev/null || ! command -v wat2wasm >/dev/null ||
  [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/wasm32-wasi ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
  else
    echo "build.sh: a compiler is missing (apt-get install $packages)" >&2
    exit 1
  fi
fi
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
for src in "$here"/src/*.rs; do
  name=$(basename "$src" .rs)
  /usr/bin/rustc --target wasm32-wasi --edition 2021 -C opt-level=2 \
    -C strip=symbols -o "$here/wasm/$name.wasm" "$src"
done
for src in "$here"/src/*.wat; do
  name=$(basename "$src" .wat)
  wat2wasm --enable-threads -o "$here/wasm/$name.wasm" "$src"
done
ls -l "$here/wasm"
deno run --allow-read="$here/.." --allow-write="$here/../provider" "$here/embed.ts"
