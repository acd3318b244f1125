#!/usr/bin/env bash
# Installs what building the assessor's in-process model backend needs
# (llama.cpp through llama-cpp-2): cmake, clang/libclang and a C++ compiler,
# from Debian's packages, and (with SHORTLIST_BROWSER_TESTS=1) Chromium, which the browser test
# (assessor/tests/eval_html.rs) renders `assessor eval --html`'s page with.
# Does nothing when they are already there.
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
# Chromium is big: only where the browser test must run (.ci/run sets it).
if [ "${SHORTLIST_BROWSER_TESTS:-}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-build-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-build-deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
