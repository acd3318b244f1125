#!/usr/bin/env bash
# bench/llama.sh: the in-process GGUF backend (LLM_BACKEND=llama) against
# llama.cpp's own llama-bench (see docs/BENCHMARKS.md, "llama backend").
#
#   bash bench/llama.sh
#
# Same GGUF (the demo model from scripts/fetch-model.sh), same thread count,
# same llama.cpp source and compiler flags, interleaved in one run:
# 1. generation tokens/s: the assessor in regex mode (no grammar,
#    LLM_MAX_TOKENS=128) against llama-bench's tg128 at the depth of the
#    assessor's prompt (-d P) and at depth 0 (llama-bench's usual figure);
#    target: ratio of medians >= 0.9;
# 2. prompt tokens/s: the assessor's prompt evaluation against llama-bench's
#    pp<P> (report);
# 3. the assessor in its default JSON mode (grammar-constrained sampling), for
#    context (report);
# 4. model load time (timings_ms.llm_load) and peak RSS of one full
#    assessment (/usr/bin/time), against the model file + 150 MiB;
# 5. where JSON mode's time goes: bench/llama/grammar-probe.cpp runs the
#    assessor's generation loop on the same messages with three ways of
#    grammar sampling (report).
#
# llama-bench is built with cmake from the llama.cpp tree llama-cpp-sys-2
# vendors (the one the assessor links), configured with the GGML_* options
# and compiler flags of the crate's own build (read from its CMakeCache.txt),
# in target/bench-llama-cpp/ (cached). The crate does not ship the tools'
# sources, so llama-bench's front end (tools/llama-bench/*.cpp) is taken from
# the llama-cpp-python sdist on PyPI (pip download, no install); see
# bench/llama/CMakeLists.txt.
#
# Both sides spin OpenMP threads: run it on an idle machine (one busy
# neighbour divides both by up to 10). Prints a Markdown summary; every result
# JSON, llama-bench's JSON output, the probe's messages and output and
# summary.md stay in $BENCH_OUT (default: a new temp dir).
#
# Knobs (environment): BENCH_LLAMA_RUNS (7 rounds), BENCH_LLAMA_THREADS (2),
# BENCH_LLAMA_NGEN (128), BENCH_LLAMA_NATIVE=1 (also build and time a
# GGML_NATIVE=ON llama-bench without AMX, for context), BENCH_LLAMA_BENCH_SRC
# (a dir with llama-bench.cpp and main.cpp; skips the PyPI download),
# BENCH_LLAMA_PYPI_VERSION (0.3.36), BENCH_MODEL (a GGUF; default: the demo
# model), BENCH_PROFILE, BENCH_OUT, BENCH_SKIP_BUILD=1 (no cargo build),
# BENCH_LLAMA_BUILD_ONLY=1 (build everything, measure nothing: for a busy
# machine), BENCH_STRICT=1 (exit 1 when a target is missed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
HERE=$ROOT/bench/llama

RUNS=${BENCH_LLAMA_RUNS:-7}
THREADS=${BENCH_LLAMA_THREADS:-2}
NGEN=${BENCH_LLAMA_NGEN:-128}
NATIVE=${BENCH_LLAMA_NATIVE:-0}
PYPI_VERSION=${BENCH_LLAMA_PYPI_VERSION:-0.3.36}
TG_TARGET_RATIO=0.9
RSS_EXTRA_MIB=150
JOBS=$(nproc)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- tools -------------------------------------------------------------------
need_install=()
command -v cmake >/dev/null 2>&1 || need_install+=(cmake)
command -v c++ >/dev/null 2>&1 || need_install+=(g++)
command -v jq >/dev/null 2>&1 || need_install+=(jq)
command -v python3 >/dev/null 2>&1 || need_install+=(python3 python3-pip)
[[ -x /usr/bin/time ]] || need_install+=(time)
if ((${#need_install[@]})); then
    log "installing ${need_install[*]}"
    SUDO=()
    [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

# --- a clean, reproducible environment ------------------------------------------
# Nothing from the caller may change the assessor's settings or either side's
# threading (OpenMP reads OMP_*/GOMP_*; ggml's build reads GGML_*).
unset PROFILE_PATH RESULT_PATH CONFIG_PATH CACHE_DIR OPENAI_API_KEY FIXED_VERDICT LOG_FORMAT RUST_LOG
for var in $(compgen -e); do
    case $var in LLM_* | ASSESSOR_* | OMP_* | GOMP_* | KMP_* | GGML_* | LLAMA_ARG_*) unset "$var" ;; esac
done

# --- the assessor ----------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release -p assessor"
    cargo build --release -p assessor
fi
ASSESSOR=$TARGET_DIR/release/assessor
[[ -x $ASSESSOR ]] || die "release binary missing: $ASSESSOR"

# --- the model and the profile ----------------------------------------------------
MODEL=${BENCH_MODEL:-$(bash scripts/fetch-model.sh)}
[[ -f $MODEL ]] || die "no model: $MODEL"
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
MODEL_BYTES=$(stat -L -c %s "$MODEL")
# A listing the demo model judges in one go in JSON mode (with easton-terrace
# it writes a score of 2 and fails the schema twice).
PROFILE=${BENCH_PROFILE:-examples/profiles/bath-cottage.json}
[[ -f $PROFILE ]] || die "no profile: $PROFILE (set BENCH_PROFILE)"
PROFILE=$(cd "$(dirname "$PROFILE")" && pwd)/$(basename "$PROFILE")

# --- llama.cpp as the assessor links it ------------------------------------------
# The vendored tree of the llama-cpp-sys-2 in Cargo.lock.
SYS_MANIFEST=$(cargo metadata --format-version 1 --offline 2>/dev/null ||
    cargo metadata --format-version 1) || die "cargo metadata failed"
SYS_MANIFEST=$(jq -r '[.packages[] | select(.name == "llama-cpp-sys-2")][0].manifest_path // empty' <<<"$SYS_MANIFEST")
[[ -n $SYS_MANIFEST ]] || die "llama-cpp-sys-2 is not in the dependency graph (built without the llama feature?)"
SYS_DIR=$(dirname "$SYS_MANIFEST")
SYS_VERSION=$(basename "$SYS_DIR")
LLAMA_CPP=$SYS_DIR/llama.cpp
[[ -f $LLAMA_CPP/include/llama.h ]] || die "no vendored llama.cpp in $SYS_DIR"
GGML_VERSION=$(awk '/set\(GGML_VERSION_(MAJOR|MINOR|PATCH) / { gsub(/\)/, "", $2); v = v (v == "" ? "" : ".") $2 } END { print v }' "$LLAMA_CPP/ggml/CMakeLists.txt")
SYS_SHA=$(jq -r '.git.sha1 // "?"' "$SYS_DIR/.cargo_vcs_info.json" 2>/dev/null || echo '?')

# The crate's own cmake configuration, from the newest release build of it.
# shellcheck disable=SC2012 # newest first; the paths are cargo's (no odd characters)
CRATE_CACHE=$(ls -t "$TARGET_DIR"/release/build/llama-cpp-sys-2-*/out/build/CMakeCache.txt 2>/dev/null | head -n 1 || true)
[[ -n $CRATE_CACHE ]] || die "no CMakeCache.txt of llama-cpp-sys-2 under $TARGET_DIR/release/build (build the assessor first)"
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$CRATE_CACHE" | head -n 1; }
PEER_ARGS=(-DCMAKE_BUILD_TYPE="$(cache_value CMAKE_BUILD_TYPE)")
for opt in GGML_NATIVE GGML_OPENMP GGML_LLAMAFILE GGML_CPU_REPACK GGML_SSE42 GGML_AVX GGML_AVX2 GGML_FMA \
    GGML_F16C GGML_BMI2 GGML_AVX_VNNI GGML_AVX512 GGML_AVX512_VBMI GGML_AVX512_VNNI GGML_AVX512_BF16 \
    GGML_AMX_TILE GGML_AMX_INT8 GGML_AMX_BF16; do
    value=$(cache_value "$opt")
    if [[ -n $value ]]; then PEER_ARGS+=("-D$opt=$value"); fi
done
CRATE_CFLAGS=$(cache_value CMAKE_C_FLAGS)
CRATE_CXXFLAGS=$(cache_value CMAKE_CXX_FLAGS)
# -w only hides warnings; the rest (-march=..., -fPIC, ...) is kept as is.
PEER_ARGS+=(-DCMAKE_C_FLAGS="${CRATE_CFLAGS/ -w/}" -DCMAKE_CXX_FLAGS="${CRATE_CXXFLAGS/ -w/}")
CRATE_FEATURES=$(for o in GGML_NATIVE GGML_OPENMP GGML_AVX GGML_AVX2 GGML_FMA GGML_F16C GGML_BMI2 GGML_AVX512; do
    printf '%s=%s ' "${o#GGML_}" "$(cache_value "$o")"; done)

# --- llama-bench's front end ---------------------------------------------------------
CACHE=$TARGET_DIR/bench-llama-cpp
mkdir -p "$CACHE"
if [[ -n ${BENCH_LLAMA_BENCH_SRC:-} ]]; then
    BENCH_SRC=$(cd "$BENCH_LLAMA_BENCH_SRC" && pwd)
    BENCH_SRC_FROM="$BENCH_SRC"
else
    BENCH_SRC=$CACHE/llama-bench-src-llama-cpp-python-$PYPI_VERSION
    BENCH_SRC_FROM="llama-cpp-python $PYPI_VERSION sdist (PyPI), vendor/llama.cpp/tools/llama-bench"
    if [[ ! -f $BENCH_SRC/llama-bench.cpp ]]; then
        log "fetching llama-bench's source from the llama-cpp-python $PYPI_VERSION sdist (pip download, ~75 MB)"
        dl=$(mktemp -d "$CACHE/.dl.XXXXXX")
        # (pip prepares the sdist's metadata, so it also fetches its build backend, scikit-build-core)
        python3 -m pip download --no-deps --no-binary :all: --disable-pip-version-check \
            --quiet --dest "$dl" "llama-cpp-python==$PYPI_VERSION" >&2 ||
            { rm -rf "$dl"; die "pip download llama-cpp-python==$PYPI_VERSION failed"; }
        sdist=$(find "$dl" -maxdepth 1 -name 'llama_cpp_python-*.tar.gz' | head -n 1)
        mkdir -p "$dl/x"
        tar -xzf "$sdist" -C "$dl/x" --wildcards '*/vendor/llama.cpp/tools/llama-bench/*' \
            '*/vendor/llama.cpp/ggml/CMakeLists.txt'
        mkdir -p "$BENCH_SRC"
        cp "$dl"/x/*/vendor/llama.cpp/tools/llama-bench/{llama-bench.cpp,main.cpp} "$BENCH_SRC/"
        awk '/set\(GGML_VERSION_(MAJOR|MINOR|PATCH) / { gsub(/\)/, "", $2); v = v (v == "" ? "" : ".") $2 } END { print v }' \
            "$dl"/x/*/vendor/llama.cpp/ggml/CMakeLists.txt >"$BENCH_SRC/ggml-version"
        rm -rf "$dl"
    fi
    BENCH_SRC_FROM="$BENCH_SRC_FROM (its llama.cpp: ggml $(cat "$BENCH_SRC/ggml-version" 2>/dev/null || echo '?'))"
fi
[[ -f $BENCH_SRC/llama-bench.cpp && -f $BENCH_SRC/main.cpp ]] || die "no llama-bench.cpp/main.cpp in $BENCH_SRC"

# build_peer NAME CMAKE-ARGS...: configure (when the arguments changed) and
# build llama-bench in $CACHE/NAME; prints the binary's path.
build_peer() {
    local name=$1; shift
    local dir=$CACHE/$name args
    args=$(printf '%s\n' -S "$HERE" -DLLAMA_CPP_DIR="$LLAMA_CPP" -DLLAMA_BENCH_SRC="$BENCH_SRC" "$@")
    if [[ ! -f $dir/CMakeCache.txt || $(cat "$dir/.configure-args" 2>/dev/null) != "$args" ]]; then
        log "configuring llama-bench ($name) in $dir"
        rm -rf "$dir"
        mkdir -p "$dir"
        mapfile -t argv <<<"$args"
        cmake -B "$dir" "${argv[@]}" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log" >&2; die "cmake configure ($name) failed"; }
        printf '%s' "$args" >"$dir/.configure-args"
    fi
    log "building llama-bench and grammar-probe ($name; cached after the first build)"
    cmake --build "$dir" --target llama-bench grammar-probe -j "$JOBS" >"$dir/build.log" 2>&1 ||
        { tail -n 40 "$dir/build.log" >&2; die "building llama-bench ($name) failed"; }
    [[ -x $dir/bin/llama-bench && -x $dir/bin/grammar-probe ]] || die "no $dir/bin/llama-bench or grammar-probe"
    echo "$dir/bin/llama-bench"
}
PEER=$(build_peer "$SYS_VERSION-crate-flags" "${PEER_ARGS[@]}")
PROBE=$(dirname "$PEER")/grammar-probe
PEER_NATIVE=
if [[ $NATIVE == 1 ]]; then
    # -march=native, but without AMX: where the CPU lists AMX but the kernel or
    # hypervisor does not enable its tile state (this Firecracker VM), ggml's
    # AMX kernels die on their first ldtilecfg (SIGSEGV, a general protection
    # fault). Explicit -mno-amx-* win over -march=native in GCC and clang.
    PEER_NATIVE=$(build_peer "$SYS_VERSION-native-noamx" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=ON \
        "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
fi
if [[ ${BENCH_LLAMA_BUILD_ONLY:-0} == 1 ]]; then
    log "built: $PEER${PEER_NATIVE:+ and $PEER_NATIVE} (BENCH_LLAMA_BUILD_ONLY=1: nothing measured)"
    exit 0
fi

# --- scratch and output ---------------------------------------------------------------
OUT=${BENCH_OUT:-$(mktemp -d /tmp/llama-bench.XXXXXX)}
mkdir -p "$OUT/runs"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
busy() {
    # shellcheck disable=SC2009 # counts by name, which pgrep does not
    ps -eo comm= | grep -Ex 'cargo|cargo-clippy|rustc|cc|cc1|cc1plus|c\+\+|ld|ld\..*|llama-.*' | sort | uniq -c |
        awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $2, $1 }' || true
}
BUSY_START=$(busy)

BASE_ENV=(PROFILE_PATH="$PROFILE" LLM_BACKEND=llama LLM_MODEL_PATH="$MODEL" LLM_THREADS="$THREADS"
    LLM_SEED=7 LOG_FORMAT=json RUST_LOG=warn)
REGEX_ENV=("${BASE_ENV[@]}" LLM_POSITIVE_RESPONSE_REGEX='(?s).*' LLM_MAX_TOKENS="$NGEN")
JSON_ENV=("${BASE_ENV[@]}")

# assess NAME ENV...: one assessment under /usr/bin/time; the result goes to
# $OUT/runs/NAME.json, "<wall s> <max RSS KiB>" to $OUT/runs/NAME.time. It
# must have generated; a verdict the model got wrong twice (status error,
# kind reply_invalid, exit 4) still counts as an assessment, and the summary
# says how many runs ended so.
assess() {
    local name=$1; shift
    local rc=0
    /usr/bin/time -f '%e %M' -o "$OUT/runs/$name.time" \
        env "$@" RESULT_PATH="$OUT/runs/$name.json" "$ASSESSOR" 2>"$OUT/runs/$name.log" >/dev/null || rc=$?
    if [[ $rc -ne 0 ]] && ! jq -e '.error.kind == "reply_invalid"' "$OUT/runs/$name.json" >/dev/null 2>&1; then
        cat "$OUT/runs/$name.log" >&2
        die "$name: the assessor failed (exit $rc)"
    fi
    jq -e '(.usage.completion_tokens // 0) > 0 and .usage.generation_tokens_per_second != null' \
        "$OUT/runs/$name.json" >/dev/null || { cat "$OUT/runs/$name.json" >&2; die "$name: unexpected result"; }
}
# peer NAME BINARY ARGS...: one llama-bench run (JSON output) under /usr/bin/time.
peer() {
    local name=$1 bin=$2; shift 2
    /usr/bin/time -f '%e %M' -o "$OUT/runs/$name.time" \
        "$bin" -m "$MODEL" -t "$THREADS" -o json "$@" >"$OUT/runs/$name.json" 2>"$OUT/runs/$name.log" ||
        { tail -n 20 "$OUT/runs/$name.log" >&2; die "$name: llama-bench failed"; }
}

# --- the prompt: its length sets llama-bench's -p and -d ------------------------------------
log "one assessment to size the prompt"
assess sizing "${REGEX_ENV[@]}"
jq -e '.status == "ok"' "$OUT/runs/sizing.json" >/dev/null || die "sizing: the regex-mode run did not end ok"
P=$(jq -r '.usage.prompt_tokens' "$OUT/runs/sizing.json")
C=$(jq -r '.usage.completion_tokens' "$OUT/runs/sizing.json")
# If the model ends its reply before NGEN tokens, llama-bench generates as many.
if ((C < NGEN)); then log "the model stopped after $C tokens (EOS), so llama-bench generates $C too"; fi
N=$C

# --- interleaved rounds ----------------------------------------------------------------------
# Each round: llama-bench pp<P> + tg<N> (depth 0), llama-bench tg<N> at depth P,
# the assessor in regex mode, the assessor in JSON mode. llama-bench runs one
# repetition per round after its own warm-up run, so both sides see the same
# background load; the medians are over the rounds.
for ((i = 1; i <= RUNS; i++)); do
    log "round $i/$RUNS"
    peer "peer-d0-$i" "$PEER" -p "$P" -n "$N" -r 1
    peer "peer-dP-$i" "$PEER" -p 0 -n "$N" -d "$P" -r 1
    assess "regex-$i" "${REGEX_ENV[@]}"
    assess "json-$i" "${JSON_ENV[@]}"
done
if [[ -n $PEER_NATIVE ]]; then
    log "native llama-bench (context): $RUNS repetitions"
    peer native-d0 "$PEER_NATIVE" -p "$P" -n "$N" -r "$RUNS"
    peer native-dP "$PEER_NATIVE" -p 0 -n "$N" -d "$P" -r "$RUNS"
fi
# --- where JSON mode's time goes: grammar-probe, after the rounds ---------------------------
# The JSON-mode messages, as the command backend receives them (same builder,
# same profile, and with LLM_SEED=7 the same nonce: the very prompt), then the assessor's generation loop
# sampled three ways: no grammar, [grammar, greedy] as the assessor does, and
# greedy first with the grammar checking only that token (llama.cpp's own).
log "grammar-probe: JSON-mode sampling, three ways"
env PROFILE_PATH="$PROFILE" RESULT_PATH="$OUT/runs/capture.json" LLM_BACKEND=command LLM_SEED=7 \
    ASSESSOR_COMMAND="$HERE/capture-prompt.sh $OUT/messages.json" "$ASSESSOR" 2>"$OUT/runs/capture.log" >/dev/null ||
    { cat "$OUT/runs/capture.log" >&2; die "capturing the prompt failed"; }
/usr/bin/time -f '%e %M' -o "$OUT/runs/probe.time" \
    "$PROBE" "$MODEL" "$OUT/messages.json" "$THREADS" 300 >"$OUT/runs/probe.jsonl" 2>"$OUT/runs/probe.log" ||
    { cat "$OUT/runs/probe.log" >&2; die "grammar-probe failed"; }
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_END=$(busy)

# --- figures ---------------------------------------------------------------------------------
# median of the numbers on stdin; min; max
median() { jq -s 'sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end'; }
minimum() { jq -s 'min'; }
maximum() { jq -s 'max'; }
ours() { for ((i = 1; i <= RUNS; i++)); do jq "$2" "$OUT/runs/$1-$i.json"; done; }
# theirs FILE-PREFIX N_PROMPT N_GEN: every llama-bench sample (tokens/s) of that test
theirs() {
    local f
    for f in "$OUT/runs/$1".json "$OUT/runs/$1"-[0-9]*.json; do
        [[ -f $f ]] || continue
        jq --argjson p "$2" --argjson n "$3" '.[] | select(.n_prompt == $p and .n_gen == $n) | .samples_ts[]' "$f"
    done
}
stat3() { local v; v=$(cat); printf '%s %s %s\n' "$(median <<<"$v")" "$(minimum <<<"$v")" "$(maximum <<<"$v")"; }
read -r TG_OURS TG_OURS_MIN TG_OURS_MAX < <(ours regex '.usage.generation_tokens_per_second' | stat3)
read -r PP_OURS PP_OURS_MIN PP_OURS_MAX < <(ours regex '.usage.prompt_tokens_per_second' | stat3)
read -r TGJ_OURS TGJ_OURS_MIN TGJ_OURS_MAX < <(ours json '.usage.generation_tokens_per_second' | stat3)
read -r PPJ_OURS _ _ < <(ours json '.usage.prompt_tokens_per_second' | stat3)
read -r JSON_TOKENS _ _ < <(ours json '.usage.completion_tokens' | stat3)
REGEX_TOKENS=$(ours regex '.usage.completion_tokens' | jq -s 'unique | map(tostring) | join(",")' -r)
JSON_STATUS=$(ours json '"\(.status)/\(.attempts)"' | jq -s -r 'group_by(.) | map("\(length)× \(.[0])") | join(", ")')
read -r TG_DP TG_DP_MIN TG_DP_MAX < <(theirs peer-dP 0 "$N" | stat3)
read -r TG_D0 TG_D0_MIN TG_D0_MAX < <(theirs peer-d0 0 "$N" | stat3)
read -r PP_D0 PP_D0_MIN PP_D0_MAX < <(theirs peer-d0 "$P" 0 | stat3)
LOADS=$( (ours regex '.timings_ms.llm_load'; ours json '.timings_ms.llm_load'))
read -r LOAD_MS LOAD_MIN LOAD_MAX < <(stat3 <<<"$LOADS")
rss_of() { for f in "$OUT/runs/$1"-*.time; do awk '{ print $2 }' "$f"; done | maximum; }
RSS_JSON=$(rss_of json) RSS_REGEX=$(rss_of regex) RSS_PEER=$(rss_of peer-d0)
WALL_JSON=$(for ((i = 1; i <= RUNS; i++)); do awk '{ print $1 }' "$OUT/runs/json-$i.time"; done | median)
RSS_TARGET_KIB=$((MODEL_BYTES / 1024 + RSS_EXTRA_MIB * 1024))
# the JSON mode's other timings (median), e.g. total
JSON_TIMINGS=$(for ((i = 1; i <= RUNS; i++)); do jq -c '.timings_ms' "$OUT/runs/json-$i.json"; done |
    jq -s -r '(map(keys) | add | unique) as $k | [$k[] as $key | "\($key) \(map(.[$key] // empty) | sort | .[length / 2 | floor])"] | join(", ")')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || a == "null" || b == "null") print "?"; else printf "%.2f", a / b }'; }
f1() { awk -v a="$1" 'BEGIN { printf "%.1f", a }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
TG_RATIO=$(ratio "$TG_OURS" "$TG_DP")
TG_RATIO_D0=$(ratio "$TG_OURS" "$TG_D0")
PP_RATIO=$(ratio "$PP_OURS" "$PP_D0")
TG_RESULT=FAIL
if ge "$TG_RATIO" "$TG_TARGET_RATIO"; then TG_RESULT=pass; fi
RSS_RESULT=FAIL
if ((RSS_JSON <= RSS_TARGET_KIB)); then RSS_RESULT=pass; fi

{
    echo "## llama backend vs llama-bench, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "- command: \`bash bench/llama.sh\` ($RUNS interleaved rounds; medians over the rounds)"
    echo "- revision: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes')"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r); load average $LOAD_START at the start, $LOAD_END at the end; other compilers/llama tools running at the start: ${BUSY_START:-none}, at the end: ${BUSY_END:-none}"
    echo "- model: $(basename "$MODEL"), $(mib $((MODEL_BYTES / 1024))) ($MODEL_BYTES bytes); threads: $THREADS; profile: ${PROFILE#"$ROOT"/}; prompt: $P tokens"
    echo "- llama.cpp: $SYS_VERSION's vendored tree (ggml $GGML_VERSION, crate commit ${SYS_SHA:0:12}), $(cache_value CMAKE_BUILD_TYPE), $CRATE_FEATURES, C flags \`$CRATE_CFLAGS\` (the crate's own CMakeCache); llama-bench built from the same tree with the same options; its front end from $BENCH_SRC_FROM"
    echo "- raw data: $OUT"
    echo
    echo "| figure | assessor, \`llama\` backend: median (min–max) | llama-bench: median (min–max) | ratio of medians | target | result |"
    echo "| --- | ---: | ---: | ---: | --- | --- |"
    echo "| generation, tokens/s: regex mode (no grammar), $N tokens after the $P-token prompt vs tg$N at depth $P | $(f1 "$TG_OURS") ($(f1 "$TG_OURS_MIN")–$(f1 "$TG_OURS_MAX")) | $(f1 "$TG_DP") ($(f1 "$TG_DP_MIN")–$(f1 "$TG_DP_MAX")) | **${TG_RATIO}** | ≥ $TG_TARGET_RATIO | $TG_RESULT |"
    echo "| the same vs llama-bench's usual tg$N (depth 0) | | $(f1 "$TG_D0") ($(f1 "$TG_D0_MIN")–$(f1 "$TG_D0_MAX")) | ${TG_RATIO_D0} | | |"
    echo "| prompt evaluation, tokens/s: $P tokens vs pp$P | $(f1 "$PP_OURS") ($(f1 "$PP_OURS_MIN")–$(f1 "$PP_OURS_MAX")) | $(f1 "$PP_D0") ($(f1 "$PP_D0_MIN")–$(f1 "$PP_D0_MAX")) | ${PP_RATIO} | report | |"
    echo "| generation, tokens/s: JSON mode (grammar-constrained sampling, about $JSON_TOKENS tokens) vs tg$N at depth $P | $(f1 "$TGJ_OURS") ($(f1 "$TGJ_OURS_MIN")–$(f1 "$TGJ_OURS_MAX")) | $(f1 "$TG_DP") | $(ratio "$TGJ_OURS" "$TG_DP") | report (the grammar costs extra per token) | |"
    echo "| prompt evaluation, tokens/s: JSON mode | $(f1 "$PPJ_OURS") | $(f1 "$PP_D0") | $(ratio "$PPJ_OURS" "$PP_D0") | report | |"
    if [[ -n $PEER_NATIVE ]]; then
        read -r NTG_DP _ _ < <(theirs native-dP 0 "$N" | stat3)
        read -r NTG_D0 _ _ < <(theirs native-d0 0 "$N" | stat3)
        read -r NPP_D0 _ _ < <(theirs native-d0 "$P" 0 | stat3)
        echo "| context: llama-bench built with GGML_NATIVE=ON, AMX off ($RUNS reps, after the rounds): tg$N at depth $P / depth 0 / pp$P | | $(f1 "$NTG_DP") / $(f1 "$NTG_D0") / $(f1 "$NPP_D0") | ours / native tg: $(ratio "$TG_OURS" "$NTG_DP") | — | |"
    fi
    echo
    echo "| figure | assessor | reference | target | result |"
    echo "| --- | ---: | ---: | --- | --- |"
    echo "| model load (\`timings_ms.llm_load\`), median (min–max) of $((2 * RUNS)) runs, page cache warm | $LOAD_MS ms ($LOAD_MIN–$LOAD_MAX) | — | report | |"
    echo "| peak RSS, one full assessment (JSON mode, defaults), max of $RUNS | $(mib "$RSS_JSON") | model file + $RSS_EXTRA_MIB MiB = $(mib "$RSS_TARGET_KIB") | ≤ $(mib "$RSS_TARGET_KIB") | $RSS_RESULT |"
    echo "| peak RSS, regex mode, $NGEN tokens, max of $RUNS | $(mib "$RSS_REGEX") | llama-bench pp$P+tg$N: $(mib "$RSS_PEER") | report | |"
    echo "| wall time of one full assessment (JSON mode), median | $(f1 "$WALL_JSON") s | — | report | |"
    echo "| release binary (llama.cpp linked in statically) | $(mib $(($(stat -c %s "$ASSESSOR") / 1024))) ($(stat -c %s "$ASSESSOR") bytes) | — | report | |"
    echo
    echo "| grammar-probe (same loop in C++, JSON-mode messages, $THREADS threads) | tokens | generation tokens/s | sampling ms per token | full grammar passes | reply identical to \`chain\` |"
    echo "| --- | ---: | ---: | ---: | ---: | --- |"
    CHAIN_REPLY=$(jq -r 'select(.mode == "chain") | .reply' "$OUT/runs/probe.jsonl")
    while read -r line; do
        mode=$(jq -r .mode <<<"$line")
        case $mode in
            none) label="\`none\`: greedy only (as regex mode)" ;;
            chain) label="\`chain\`: [grammar, greedy] per token (as the assessor's JSON mode)" ;;
            reject) label="\`reject\`: greedy, then the grammar checks that token (as llama.cpp's common_sampler)" ;;
            *) label=$mode ;;
        esac
        same=—
        if [[ $mode != none ]]; then
            if [[ $(jq -r .reply <<<"$line") == "$CHAIN_REPLY" ]]; then same=yes; else same=NO; fi
        fi
        echo "| $label | $(jq -r .tokens <<<"$line") | $(jq -r .tokens_per_second <<<"$line") | $(jq -r .sampling_ms_per_token <<<"$line") | $(jq -r .full_grammar_passes <<<"$line") | $same |"
    done <"$OUT/runs/probe.jsonl"
    echo
    PROBE_TOKENS=$(jq -r 'select(.mode == "chain") | .tokens' "$OUT/runs/probe.jsonl")
    if [[ $PROBE_TOKENS == "$JSON_TOKENS" ]]; then same_reply="equal counts: the same reply"; else
        same_reply="DIFFERENT counts: has verdict_grammar changed? update the schema in grammar-probe.cpp"; fi
    echo "- grammar-probe \`chain\` wrote $PROBE_TOKENS tokens from a $(jq -r 'select(.mode == "chain") | .prompt_tokens' "$OUT/runs/probe.jsonl")-token prompt; the assessor's JSON mode $JSON_TOKENS from $(jq -r '.usage.prompt_tokens' "$OUT/runs/json-1.json") ($same_reply)"
    echo "- regex-mode completion tokens per run: $REGEX_TOKENS (llama-bench generated $N)"
    echo "- JSON mode, median \`timings_ms\`: $JSON_TIMINGS; status/attempts per run: $JSON_STATUS"
} | tee "$OUT/summary.md"

# BENCH_STRICT=1: exit 1 when a target is missed (the default only reports).
if [[ ${BENCH_STRICT:-0} == 1 ]] && grep -q '| FAIL |' "$OUT/summary.md"; then
    log "a target was missed"
    exit 1
fi
