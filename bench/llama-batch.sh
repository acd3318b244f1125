#!/usr/bin/env bash
# bench/llama-batch.sh: a batch judged by the in-process GGUF backend
# (LLM_BACKEND=llama) with ASSESSOR_JOBS = 1, 2, 4, against llama.cpp's own
# llama-batched-bench (N sequences decoded together in one context) on the
# same GGUF, the same llama.cpp and the same number of threads.
#
#   bash bench/llama-batch.sh [ASSESSOR_BIN]     (default target/release/assessor)
#
# 1. Makes BENCH_PROFILES_N (48) profiles from the 12 in examples/samples/:
#    each sample in turn, with a distinct id (s01-r1, s01-r2, ...) and a
#    distinct reference sentence appended to its text, so that no two
#    requests are alike (and LLM_RESPONSE_CACHE=false, no CACHE_DIR anyway),
#    written as one .jsonl.
# 2. For each JOBS in BENCH_JOBS (1 2 4), one batch under /usr/bin/time:
#      PROFILE_PATH=profiles.jsonl RESULT_DIR=<fresh dir> ASSESSOR_JOBS=JOBS
#      LLM_BACKEND=llama LLM_MODEL_PATH=<gguf> LLM_THREADS=2
#      LLM_RESPONSE_CACHE=false LLM_SEED=7 LOG_FORMAT=json RUST_LOG=warn
#    (the judge settings of bench/llama-contention.sh: JSON mode, no brief, no
#    rules; not examples/config.json, whose rules would decide some profiles
#    without the judge). From the results: wall time, profiles/s, p50/p95 of
#    each result's timings_ms.total (the judgement of one profile, start to
#    result, not the time it queued), generated tokens/s (sum of
#    usage.completion_tokens / wall), mean prompt and completion tokens per
#    profile, peak RSS (%M).
# 3. llama-batched-bench -npp <mean prompt tokens> -ntg <mean completion
#    tokens> -npl <BENCH_JOBS> -t 2 --output-format jsonl, three ways: each
#    sequence its own prompt (what ASSESSOR_JOBS>1 did before batching), one
#    shared prompt (-pps), and a shared prompt in a unified KV cache
#    (-pps -kvu: the prefix is stored once). Its S_TG t/s is pure decoding;
#    "G/T" is generated tokens over its whole time (prompt included), the
#    closer match to the assessor's generated tokens / wall.
#
# llama-batched-bench is built like bench/llama.sh's llama-bench: cmake on the
# llama.cpp tree llama-cpp-sys-2 vendors, with the GGML_* options and compiler
# flags of the crate's own build (its CMakeCache.txt: OpenMP as the crate's),
# in target/bench-llama-cpp/<crate version>-crate-flags, the same build
# directory and configure arguments as bench/llama.sh (one llama.cpp build
# serves both). Its front end (tools/batched-bench/batched-bench.cpp, main.cpp)
# comes from the llama-cpp-python sdist on PyPI (pip download, no install),
# put beside llama-bench's in target/bench-llama-cpp/llama-bench-src-*; see
# bench/llama/CMakeLists.txt.
#
# Prints a Markdown summary (also $BENCH_OUT/summary.md); every result, log
# and llama-batched-bench output stays in $BENCH_OUT (default: a new temp
# dir). Figures: docs/BENCHMARKS.md ("llama backend", batched decoding). Run
# it on an idle machine: both sides spin OpenMP threads.
#
# Knobs (environment): BENCH_OUT, BENCH_MODEL (a GGUF; default: the demo model
# from scripts/fetch-model.sh), BENCH_JOBS ("1 2 4"), BENCH_PROFILES_N (48),
# BENCH_LLAMA_THREADS (2), BENCH_TIMEOUT (per batch, 1800s: a batch still
# running then gets SIGTERM, drains and is reported as cut short),
# BENCH_SKIP_BUILD=1 (no cargo build; without an ASSESSOR_BIN argument the
# script otherwise runs `cargo build --release -p assessor`; the cmake build of
# llama-batched-bench is cached and always checked), BENCH_BUILD_JOBS (2),
# BENCH_LLAMA_PYPI_VERSION (0.3.36), BENCH_LLAMA_SDIST (a downloaded
# llama_cpp_python-*.tar.gz: skips pip download), BENCH_LLAMA_BENCH_SRC (as in
# bench/llama.sh; must then also hold batched-bench.cpp and
# batched-bench-main.cpp), BENCH_BB_MODES ("separate pps pps-kvu"),
# BENCH_LLAMA_BUILD_ONLY=1 (build llama-batched-bench only: no cargo build,
# nothing measured).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
HERE=$ROOT/bench/llama

JOB_COUNTS=${BENCH_JOBS:-1 2 4}
PROFILES_N=${BENCH_PROFILES_N:-48}
THREADS=${BENCH_LLAMA_THREADS:-2}
TIMEOUT=${BENCH_TIMEOUT:-1800s}
BUILD_JOBS=${BENCH_BUILD_JOBS:-2}
PYPI_VERSION=${BENCH_LLAMA_PYPI_VERSION:-0.3.36}
BB_MODES=${BENCH_BB_MODES:-separate pps pps-kvu}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- tools -------------------------------------------------------------------
missing=()
for tool in cmake c++ jq python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ -x /usr/bin/time ]] || missing+=(/usr/bin/time)
((${#missing[@]} == 0)) || die "missing: ${missing[*]} (apt-get install cmake g++ jq python3 python3-pip time)"
for n in $JOB_COUNTS; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_JOBS: not a positive integer: $n"; done
[[ $PROFILES_N =~ ^[1-9][0-9]*$ ]] || die "BENCH_PROFILES_N: not a positive integer: $PROFILES_N"

# --- a clean, reproducible environment ---------------------------------------
# As bench/llama.sh: nothing from the caller may change the assessor's
# settings or either side's threading.
unset PROFILE_PATH RESULT_PATH RESULT_DIR RESULTS_JSONL CONFIG_PATH CACHE_DIR OPENAI_API_KEY FIXED_VERDICT LOG_FORMAT RUST_LOG
for var in $(compgen -e); do
    case $var in LLM_* | ASSESSOR_* | CAPTION_* | OMP_* | GOMP_* | KMP_* | GGML_* | LLAMA_ARG_*) unset "$var" ;; esac
done

# --- the assessor --------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BUILD_ONLY=${BENCH_LLAMA_BUILD_ONLY:-0}
if [[ $# -ge 1 ]]; then
    ASSESSOR=$1
else
    if [[ ${BENCH_SKIP_BUILD:-0} != 1 && $BUILD_ONLY != 1 ]]; then
        log "cargo build --release -p assessor"
        cargo build --release -p assessor
    fi
    ASSESSOR=$TARGET_DIR/release/assessor
fi
if [[ $BUILD_ONLY != 1 ]]; then
    [[ -x $ASSESSOR ]] || die "no assessor binary: $ASSESSOR"
    ASSESSOR=$(cd "$(dirname "$ASSESSOR")" && pwd)/$(basename "$ASSESSOR")
fi

# --- the model -------------------------------------------------------------------
MODEL=${BENCH_MODEL:-$(bash scripts/fetch-model.sh)}
[[ -f $MODEL ]] || die "no model: $MODEL"
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")

# --- llama.cpp as the assessor links it (as in bench/llama.sh) -------------------
# The configure arguments below must stay those of bench/llama.sh's build_peer
# for the crate-flags build: the build directory is shared, and either script
# wipes it when the arguments differ.
SYS_MANIFEST=$(cargo metadata --format-version 1 --offline 2>/dev/null ||
    cargo metadata --format-version 1) || die "cargo metadata failed"
SYS_MANIFEST=$(jq -r '[.packages[] | select(.name == "llama-cpp-sys-2")][0].manifest_path // empty' <<<"$SYS_MANIFEST")
[[ -n $SYS_MANIFEST ]] || die "llama-cpp-sys-2 is not in the dependency graph (built without the llama feature?)"
SYS_DIR=$(dirname "$SYS_MANIFEST")
SYS_VERSION=$(basename "$SYS_DIR")
LLAMA_CPP=$SYS_DIR/llama.cpp
[[ -f $LLAMA_CPP/include/llama.h ]] || die "no vendored llama.cpp in $SYS_DIR"
ggml_version() { awk '/set\(GGML_VERSION_(MAJOR|MINOR|PATCH) / { gsub(/\)/, "", $2); v = v (v == "" ? "" : ".") $2 } END { print v }' "$1"; }
GGML_VERSION=$(ggml_version "$LLAMA_CPP/ggml/CMakeLists.txt")

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
PEER_ARGS+=(-DCMAKE_C_FLAGS="${CRATE_CFLAGS/ -w/}" -DCMAKE_CXX_FLAGS="${CRATE_CXXFLAGS/ -w/}")
CRATE_FEATURES=$(for o in GGML_NATIVE GGML_OPENMP GGML_AVX2 GGML_FMA; do
    printf '%s=%s ' "${o#GGML_}" "$(cache_value "$o")"; done)

# --- the front ends: llama-bench's and llama-batched-bench's ----------------------
CACHE=$TARGET_DIR/bench-llama-cpp
mkdir -p "$CACHE"
if [[ -n ${BENCH_LLAMA_BENCH_SRC:-} ]]; then
    BENCH_SRC=$(cd "$BENCH_LLAMA_BENCH_SRC" && pwd)
    SRC_FROM=$BENCH_SRC
else
    BENCH_SRC=$CACHE/llama-bench-src-llama-cpp-python-$PYPI_VERSION
    SRC_FROM="llama-cpp-python $PYPI_VERSION sdist (PyPI), vendor/llama.cpp/tools/batched-bench"
    if [[ ! -f $BENCH_SRC/llama-bench.cpp || ! -f $BENCH_SRC/main.cpp || ! -f $BENCH_SRC/batched-bench.cpp ||
        ! -f $BENCH_SRC/batched-bench-main.cpp ]]; then
        dl=$(mktemp -d "$CACHE/.dl.XXXXXX")
        if [[ -n ${BENCH_LLAMA_SDIST:-} ]]; then
            sdist=$BENCH_LLAMA_SDIST
        else
            log "fetching the tools' sources from the llama-cpp-python $PYPI_VERSION sdist (pip download, ~75 MB)"
            python3 -m pip download --no-deps --no-binary :all: --disable-pip-version-check \
                --quiet --dest "$dl" "llama-cpp-python==$PYPI_VERSION" >&2 ||
                { rm -rf "$dl"; die "pip download llama-cpp-python==$PYPI_VERSION failed"; }
            sdist=$(find "$dl" -maxdepth 1 -name 'llama_cpp_python-*.tar.gz' | head -n 1)
        fi
        [[ -f $sdist ]] || { rm -rf "$dl"; die "no llama-cpp-python sdist: ${sdist:-none}"; }
        mkdir -p "$dl/x"
        tar -xzf "$sdist" -C "$dl/x" --wildcards '*/vendor/llama.cpp/tools/llama-bench/*' \
            '*/vendor/llama.cpp/tools/batched-bench/*' '*/vendor/llama.cpp/ggml/CMakeLists.txt' ||
            { rm -rf "$dl"; die "the sdist $sdist has no tools/llama-bench or tools/batched-bench"; }
        mkdir -p "$BENCH_SRC"
        tools=$(echo "$dl"/x/*/vendor/llama.cpp/tools)
        # llama-bench's files exactly as bench/llama.sh writes them (kept when there)
        if [[ ! -f $BENCH_SRC/llama-bench.cpp || ! -f $BENCH_SRC/main.cpp ]]; then
            cp "$tools"/llama-bench/{llama-bench.cpp,main.cpp} "$BENCH_SRC/"
            ggml_version "$tools/../ggml/CMakeLists.txt" >"$BENCH_SRC/ggml-version"
        fi
        cp "$tools/batched-bench/batched-bench.cpp" "$BENCH_SRC/batched-bench.cpp"
        cp "$tools/batched-bench/main.cpp" "$BENCH_SRC/batched-bench-main.cpp"
        rm -rf "$dl"
    fi
    SRC_FROM="$SRC_FROM (its llama.cpp: ggml $(cat "$BENCH_SRC/ggml-version" 2>/dev/null || echo '?'))"
fi
[[ -f $BENCH_SRC/batched-bench.cpp && -f $BENCH_SRC/batched-bench-main.cpp ]] ||
    die "no batched-bench.cpp/batched-bench-main.cpp in $BENCH_SRC (tools/batched-bench/{batched-bench.cpp,main.cpp})"

# --- llama-batched-bench (cached) ---------------------------------------------------
BUILD=$CACHE/$SYS_VERSION-crate-flags
args=$(printf '%s\n' -S "$HERE" -DLLAMA_CPP_DIR="$LLAMA_CPP" -DLLAMA_BENCH_SRC="$BENCH_SRC" "${PEER_ARGS[@]}")
mapfile -t argv <<<"$args"
if [[ ! -f $BUILD/CMakeCache.txt || $(cat "$BUILD/.configure-args" 2>/dev/null) != "$args" ]]; then
    log "configuring llama.cpp's tools in $BUILD"
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    cmake -B "$BUILD" "${argv[@]}" >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log" >&2; die "cmake configure failed"; }
    printf '%s' "$args" >"$BUILD/.configure-args"
else
    # Same arguments: configure again in place (seconds, nothing rebuilt) so that
    # a build directory made before batched-bench.cpp was there gets its target.
    cmake -B "$BUILD" "${argv[@]}" >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log" >&2; die "cmake configure failed"; }
fi
log "building llama-batched-bench in $BUILD (-j $BUILD_JOBS; cached after the first build)"
cmake --build "$BUILD" --target llama-batched-bench -j "$BUILD_JOBS" >"$BUILD/build-batched.log" 2>&1 ||
    { tail -n 40 "$BUILD/build-batched.log" >&2; die "building llama-batched-bench failed"; }
PEER=$BUILD/bin/llama-batched-bench
[[ -x $PEER ]] || die "no $PEER"
if [[ $BUILD_ONLY == 1 ]]; then
    log "built: $PEER (BENCH_LLAMA_BUILD_ONLY=1: nothing measured)"
    exit 0
fi

# --- scratch and output ------------------------------------------------------------
OUT=${BENCH_OUT:-$(mktemp -d /tmp/llama-batch.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
busy() {
    # shellcheck disable=SC2009 # counts by name, which pgrep does not
    ps -eo comm= | grep -Ex 'cargo|cargo-clippy|rustc|cc|cc1|cc1plus|c\+\+|ld|ld\..*|llama-.*|assessor' | sort | uniq -c |
        awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $2, $1 }' || true
}
BUSY_START=$(busy)

# --- the profiles ----------------------------------------------------------------------
PROFILES=$OUT/profiles.jsonl
python3 - "$ROOT/examples/samples" "$PROFILES_N" >"$PROFILES" <<'PY'
import json, pathlib, sys
samples = sorted(pathlib.Path(sys.argv[1]).glob("s[0-9][0-9].json"))
if not samples:
    sys.exit("bench: no examples/samples/s*.json")
n = int(sys.argv[2])
for i in range(n):
    path = samples[i % len(samples)]
    rep = i // len(samples) + 1
    profile = json.loads(path.read_text())
    meta = profile.setdefault("metadata", {})
    stem = path.stem
    meta["id"] = f"{stem}-r{rep}"
    if "url" in meta:
        meta["url"] = f"{meta['url']}-r{rep}"
    profile["text"] = f"{profile.get('text', '').rstrip()} Agent reference {stem.upper()}-{rep:02d}."
    print(json.dumps(profile, ensure_ascii=False))
PY
log "$PROFILES_N profiles in $PROFILES"

# --- the batches -------------------------------------------------------------------------
# run_batch JOBS: one batch under /usr/bin/time; results in $OUT/jobs-JOBS/results,
# "<wall s> <max RSS KiB>" in $OUT/jobs-JOBS/time, the exit code in .../rc.
run_batch() {
    local jobs=$1 dir=$OUT/jobs-$1 rc=0
    rm -rf "$dir"
    mkdir -p "$dir/results"
    log "batch: $PROFILES_N profiles, ASSESSOR_JOBS=$jobs (timeout $TIMEOUT)"
    /usr/bin/time -f '%e %M' -o "$dir/time" \
        timeout --signal=TERM --kill-after=60s "$TIMEOUT" \
        env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
        PROFILE_PATH="$PROFILES" RESULT_DIR="$dir/results" RESULTS_JSONL="$dir/results.jsonl" \
        ASSESSOR_JOBS="$jobs" LLM_BACKEND=llama LLM_MODEL_PATH="$MODEL" LLM_THREADS="$THREADS" \
        LLM_RESPONSE_CACHE=false LLM_SEED=7 LOG_FORMAT=json RUST_LOG=warn \
        "$ASSESSOR" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
    echo "$rc" >"$dir/rc"
    case $rc in
        0) ;;
        4) log "JOBS=$jobs: exit 4 (a backend failure; counted in the summary)" ;;
        124 | 143) log "JOBS=$jobs: cut short by the timeout ($TIMEOUT)" ;;
        *) tail -n 20 "$dir/stderr" >&2; die "JOBS=$jobs: the assessor failed (exit $rc)" ;;
    esac
}
for jobs in $JOB_COUNTS; do run_batch "$jobs"; done

# figures of one batch, as one JSON object
batch_figures() {
    local jobs=$1 dir=$OUT/jobs-$1
    python3 - "$dir" "$jobs" "$PROFILES_N" <<'PY'
import json, pathlib, sys
d, jobs, n = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
wall, rss = (float(x) for x in (d / "time").read_text().split()[-2:])
rows = []
for f in sorted((d / "results").glob("*.json")):
    try:
        rows.append(json.loads(f.read_text()))
    except Exception:
        pass
def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    k = (len(v) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
usage = [r.get("usage") or {} for r in rows]
prompt = [u["prompt_tokens"] for u in usage if u.get("prompt_tokens") is not None]
compl = [u["completion_tokens"] for u in usage if u.get("completion_tokens") is not None]
total_ms = [(r.get("timings_ms") or {}).get("total") for r in rows]
total_ms = [t for t in total_ms if t is not None]
llm_load = [(r.get("timings_ms") or {}).get("llm_load") for r in rows]
llm_load = [t for t in llm_load if t is not None]
status = {}
for r in rows:
    key = r.get("status", "ok") if r.get("status", "ok") == "ok" else f"error:{(r.get('error') or {}).get('kind')}"
    status[key] = status.get(key, 0) + 1
print(json.dumps({
    "jobs": jobs, "rc": int((d / "rc").read_text()), "wall_s": wall, "rss_kib": rss,
    "results": len(rows), "expected": n, "status": status,
    "ok": sum(1 for r in rows if r.get("status", "ok") == "ok"),
    "profiles_per_s": len(rows) / wall if wall else None,
    "p50_ms": pct(total_ms, 0.5), "p95_ms": pct(total_ms, 0.95),
    "completion_tokens": sum(compl), "prompt_tokens": sum(prompt),
    "gen_tps": sum(compl) / wall if wall else None,
    "mean_prompt": sum(prompt) / len(prompt) if prompt else None,
    "mean_completion": sum(compl) / len(compl) if compl else None,
    "mean_attempts": sum(r.get("attempts") or 0 for r in rows) / len(rows) if rows else None,
    "llm_load_ms_max": max(llm_load) if llm_load else None,
    "llm_load_nonzero": sum(1 for t in llm_load if t > 0),
}))
PY
}
: >"$OUT/batches.jsonl"
for jobs in $JOB_COUNTS; do batch_figures "$jobs" >>"$OUT/batches.jsonl"; done

# --- llama-batched-bench at the batch's mean shape ---------------------------------------
FIRST=$(head -n 1 "$OUT/batches.jsonl")
NPP=$(jq -r '.mean_prompt // empty | round' <<<"$FIRST")
NTG=$(jq -r '.mean_completion // empty | round' <<<"$FIRST")
[[ -n $NPP && -n $NTG && $NTG -gt 0 ]] || die "no token counts in the first batch's results"
NPL=$(tr -s ' ' '\n' <<<"$JOB_COUNTS" | grep . | paste -sd, -)
MAX_PL=$(tr -s ' ' '\n' <<<"$JOB_COUNTS" | grep . | sort -n | tail -n 1)
# every sequence holds its own prompt + reply (non-unified KV: n_ctx / n_seq each)
CTX=$(((MAX_PL * (NPP + NTG) + 255) / 256 * 256))
: >"$OUT/batched-bench.jsonl"
for mode in $BB_MODES; do
    case $mode in
        separate) extra=() ;;
        pps) extra=(-pps) ;;
        pps-kvu) extra=(-pps -kvu) ;;
        *) die "BENCH_BB_MODES: unknown mode $mode (separate, pps, pps-kvu)" ;;
    esac
    log "llama-batched-bench ($mode): -npp $NPP -ntg $NTG -npl $NPL -c $CTX -t $THREADS ${extra[*]}"
    /usr/bin/time -f '%e %M' -o "$OUT/bb-$mode.time" \
        "$PEER" -m "$MODEL" -c "$CTX" -b 2048 -ub 512 -npp "$NPP" -ntg "$NTG" -npl "$NPL" \
        -t "$THREADS" --output-format jsonl "${extra[@]}" >"$OUT/bb-$mode.out" 2>"$OUT/bb-$mode.log" ||
        { tail -n 20 "$OUT/bb-$mode.log" >&2; die "llama-batched-bench ($mode) failed"; }
    grep -h '^{' "$OUT/bb-$mode.out" "$OUT/bb-$mode.log" |
        jq -c --arg mode "$mode" --argjson rss "$(awk '{ print $2 }' "$OUT/bb-$mode.time")" \
            '. + {mode: $mode, rss_kib: $rss, gen_over_total: (.pl * .tg / .t)}' >>"$OUT/batched-bench.jsonl"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_END=$(busy)

# --- summary -------------------------------------------------------------------------------
{
    echo "## llama backend, batch of $PROFILES_N with ASSESSOR_JOBS = ${JOB_COUNTS// /, }, vs llama-batched-bench, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "- command: \`bash bench/llama-batch.sh${1:+ $1}\`"
    echo "- assessor: $ASSESSOR; revision $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes')"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); load average $LOAD_START at the start, $LOAD_END at the end; compilers/llama tools/assessors running at the start: ${BUSY_START:-none}, at the end: ${BUSY_END:-none}"
    echo "- model: $(basename "$MODEL"); LLM_THREADS=$THREADS, llama-batched-bench -t $THREADS; judge: JSON mode, no brief or rules, LLM_SEED=7, LLM_RESPONSE_CACHE=false"
    echo "- llama.cpp: $SYS_VERSION's vendored tree (ggml $GGML_VERSION), $(cache_value CMAKE_BUILD_TYPE), $CRATE_FEATURES C flags \`$CRATE_CFLAGS\` (the crate's CMakeCache); llama-batched-bench built from the same tree with the same options; its front end from $SRC_FROM"
    echo "- llama-batched-bench shape: -npp $NPP -ntg $NTG (the JOBS=$(jq -r .jobs <<<"$FIRST") batch's mean prompt and completion tokens per profile) -npl $NPL -c $CTX -b 2048 -ub 512"
    echo "- raw data: $OUT"
    echo
    python3 - "$OUT/batches.jsonl" "$OUT/batched-bench.jsonl" <<'PY'
import json, sys
batches = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bb = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
def f(x, d=1):
    return "–" if x is None else f"{x:.{d}f}"
def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}"
def peer(mode, pl):
    for r in bb:
        if r["mode"] == mode and r["pl"] == pl:
            return r
    return None
base = next((b for b in batches if b["jobs"] == 1), batches[0])
modes = list(dict.fromkeys(r["mode"] for r in bb))
shared = "pps" if "pps" in modes else (modes[-1] if modes else None)
print("| JOBS | profiles/s | × JOBS=1 | p50 s | p95 s | peak RSS MiB | generated t/s (assessor) "
      "| batched-bench S_TG t/s (separate) | ratio | batched-bench S_TG t/s (-pps) | ratio | batched-bench G/T t/s (separate) | ratio | results (ok) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for b in batches:
    sep, pps = peer("separate", b["jobs"]), peer(shared, b["jobs"]) if shared else None
    cut = "" if b["rc"] in (0, 4) else f", cut short (exit {b['rc']})"
    print(f"| {b['jobs']} | {f(b['profiles_per_s'], 3)} | {ratio(b['profiles_per_s'], base['profiles_per_s'])} "
          f"| {f(b['p50_ms'] and b['p50_ms'] / 1000, 2)} | {f(b['p95_ms'] and b['p95_ms'] / 1000, 2)} "
          f"| {f(b['rss_kib'] / 1024)} | {f(b['gen_tps'])} "
          f"| {f(sep and sep['speed_tg'])} | {ratio(b['gen_tps'], sep and sep['speed_tg'])} "
          f"| {f(pps and pps['speed_tg'])} | {ratio(b['gen_tps'], pps and pps['speed_tg'])} "
          f"| {f(sep and sep['gen_over_total'])} | {ratio(b['gen_tps'], sep and sep['gen_over_total'])} "
          f"| {b['results']}/{b['expected']} ({b['ok']}){cut} |")
print()
print("| JOBS | wall s | mean prompt tokens | mean completion tokens | mean attempts | statuses | exit |")
print("|---:|---:|---:|---:|---:|---|---:|")
for b in batches:
    st = ", ".join(f"{v}× {k}" for k, v in sorted(b["status"].items()))
    print(f"| {b['jobs']} | {f(b['wall_s'])} | {f(b['mean_prompt'])} | {f(b['mean_completion'])} | {f(b['mean_attempts'], 2)} | {st} | {b['rc']} |")
print()
print("| llama-batched-bench | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s | G/T t/s | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
labels = {"separate": "separate prompts", "pps": "shared prompt (-pps)", "pps-kvu": "shared prompt, unified KV (-pps -kvu)"}
for r in bb:
    print(f"| {labels.get(r['mode'], r['mode'])} | {r['pl']} | {r['n_kv']} | {r['t_pp']:.3f} | {r['speed_pp']:.1f} | {r['t_tg']:.3f} "
          f"| {r['speed_tg']:.1f} | {r['t']:.3f} | {r['speed']:.1f} | {r['gen_over_total']:.1f} | {r['rss_kib'] / 1024:.1f} |")
print()
print("- profiles/s: results written / wall time of the whole batch (model load included); × JOBS=1: against the JOBS=1 batch")
print("- p50/p95: each result's `timings_ms.total` (one profile's judgement, start to result; not the time it waited for a job slot)")
print("- generated t/s (assessor): sum of `usage.completion_tokens` over the batch / its wall time (prompt evaluation, load and retries included)")
print("- S_TG: llama-batched-bench's B×TG / T_TG (decoding only, random tokens, no sampling); G/T: B×TG / T (prompt evaluation included), the closer match to the assessor's figure; ratio = assessor / batched-bench")
PY
} | tee "$OUT/summary.md"
