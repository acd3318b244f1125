#!/usr/bin/env bash
# bench/captions.sh: the captions stage's reproducible benchmark (see docs/BENCHMARKS.md).
#
#   bash bench/captions.sh
#
# A profile with 8 distinct local PNG images (bench/captions/make_profile.py)
# is assessed by the release assessor with `LLM_BACKEND=fixed` and
# `CAPTION_BACKEND=openai` against a local vision endpoint that answers every
# caption request after a fixed 200 ms (bench/captions/vision_server.py). Per
# round:
# 1. a cold run with a fresh, empty CACHE_DIR: `timings_ms.captions` (the
#    stage's wall time) against the slowest single caption (max of
#    `captions[].ms`); the ratio stage / slowest is 1 when the 8 requests
#    overlap fully, about 8 when they run one after the other;
# 2. a warm run with the same CACHE_DIR: `timings_ms.captions`, every record
#    `cached: true`, no request at the server.
# Then once, for reference, a cold run with CAPTION_CONCURRENCY=1 (≈ 8 × 200 ms).
#
# Targets: cold stage ≤ 1.3 × the slowest single caption, warm stage ≤ 5 ms
# (both judged on the median and on the max over the rounds).
#
# Prints a Markdown summary; every result JSON, the assessor's logs, the
# server's counters per run, the profile and summary.md stay in $BENCH_OUT
# (default: a new temp dir).
#
# Knobs (environment): ROUNDS (20), BENCH_CAPTIONS_LATENCY_MS (200),
# BENCH_OUT (output dir), BENCH_SKIP_BUILD=1, BENCH_STRICT=1 (exit 1 when a
# target is missed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
HERE=$ROOT/bench/captions

ROUNDS=${ROUNDS:-20}
LATENCY_MS=${BENCH_CAPTIONS_LATENCY_MS:-200}
IMAGES=8
RATIO_TARGET=1.3
WARM_TARGET_MS=5

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$ROUNDS'"

# --- tools -------------------------------------------------------------------
if ! command -v python3 >/dev/null 2>&1; then
    log "installing python3"
    SUDO=()
    [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
fi
PYTHON=$(command -v python3)

# --- a clean, reproducible environment for the assessor ----------------------
unset PROFILE_PATH RESULT_PATH CONFIG_PATH CACHE_DIR OPENAI_API_KEY FIXED_VERDICT LOG_FORMAT RUST_LOG \
    http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
for var in $(compgen -e); do
    case $var in LLM_* | ASSESSOR_* | CAPTION_*) unset "$var" ;; esac
done
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# --- build -------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release -p assessor --locked"
    cargo build --release -p assessor --locked
fi
ASSESSOR=$TARGET_DIR/release/assessor
[[ -x $ASSESSOR ]] || die "release binary missing: $ASSESSOR"

# --- scratch and output dirs; the server always stopped ------------------------
WORK=$(mktemp -d /tmp/captions-bench-work.XXXXXX)
OUT=${BENCH_OUT:-$(mktemp -d /tmp/captions-bench.XXXXXX)}
mkdir -p "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
busy() {
    # shellcheck disable=SC2009 # counts by name, which pgrep does not
    ps -eo comm= | grep -Ex 'cargo|cargo-clippy|rustc|cc|cc1|cc1plus|c\+\+|ld|ld\..*|llama-.*' | sort | uniq -c |
        awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $2, $1 }' || true
}
BUSY_START=$(busy)

# --- the vision endpoint on a free loopback port (the server picks it) ---------
"$PYTHON" "$HERE/vision_server.py" 0 "$LATENCY_MS" >"$WORK/server.port" 2>"$OUT/server.err" &
SERVER_PID=$!
PORT=
for _ in $(seq 100); do
    PORT=$(head -n1 "$WORK/server.port" 2>/dev/null || true)
    [[ -n $PORT ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.err" >&2; die "the vision server did not start"; }
    sleep 0.05
done
[[ $PORT =~ ^[0-9]+$ ]] || die "the vision server did not print its port"
BASE=http://127.0.0.1:$PORT

# stats [reset]: the server's counters as one JSON line (reset: then zero them).
stats() {
    "$PYTHON" - "$BASE/stats${1:+?reset=1}" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    print(r.read().decode())
EOF
}
stats >/dev/null || die "the vision server does not answer /stats"
log "vision server (pid $SERVER_PID) at $BASE/v1, ${LATENCY_MS} ms per caption"

# --- the profile: 8 distinct 64x64 PNGs next to it ------------------------------
PROFILE=$("$PYTHON" "$HERE/make_profile.py" "$OUT/profile" "$IMAGES")
[[ -f $PROFILE ]] || die "no profile written"

# --- runs ------------------------------------------------------------------------
BASE_ENV=(PROFILE_PATH="$PROFILE" LLM_BACKEND=fixed CAPTION_BACKEND=openai
    CAPTION_BASE_URL="$BASE/v1" CAPTION_MODEL=bench-vision LOG_FORMAT=json RUST_LOG=warn)

# run NAME CACHE_DIR [VAR=VALUE...]: one assessment into $OUT/runs/NAME.json,
# logs into NAME.log, the server's counters for it into NAME.stats, the
# process's wall time (ms) into NAME.wall. The assessor must exit 0.
run() {
    local name=$1 cache=$2 rc=0 t0 t1
    shift 2
    stats reset >/dev/null
    t0=$EPOCHREALTIME
    env "${BASE_ENV[@]}" CACHE_DIR="$cache" RESULT_PATH="$OUT/runs/$name.json" "$@" \
        "$ASSESSOR" >"$OUT/runs/$name.log" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    stats >"$OUT/runs/$name.stats"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }' >"$OUT/runs/$name.wall"
    if ((rc != 0)); then
        cat "$OUT/runs/$name.log" >&2
        [[ -f $OUT/runs/$name.json ]] && cat "$OUT/runs/$name.json" >&2
        die "$name: the assessor exited $rc"
    fi
}

# check NAME cold|warm: the result must be ok with IMAGES caption records, all
# captioned (cold: not cached, IMAGES requests at the server; warm: all cached,
# no request at all).
check() {
    "$PYTHON" - "$OUT/runs/$1.json" "$OUT/runs/$1.stats" "$2" "$IMAGES" <<'EOF' ||
import json, sys
path, stats_path, kind, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
r = json.load(open(path))
s = json.load(open(stats_path))
problems = []
if r.get("status") != "ok":
    problems.append(f"status {r.get('status')!r}, error {r.get('error')!r}")
caps = r.get("captions")
if not isinstance(caps, list):
    problems.append(f"no captions array (top-level keys: {sorted(r)})")
    caps = []
elif len(caps) != n:
    problems.append(f"{len(caps)} caption records, expected {n}")
timings = r.get("timings_ms") or {}
if not isinstance(timings.get("captions"), int):
    problems.append(f"no integer timings_ms.captions (timings_ms: {timings})")
for c in caps:
    if c.get("error") is not None or not c.get("caption"):
        problems.append(f"{c.get('image')}: error {c.get('error')!r}, caption {c.get('caption')!r}")
    if not isinstance(c.get("ms"), int):
        problems.append(f"{c.get('image')}: ms is {c.get('ms')!r}")
    want_cached = kind == "warm"
    if c.get("cached") is not want_cached:
        problems.append(f"{c.get('image')}: cached is {c.get('cached')!r}, expected {want_cached}")
want_requests = n if kind == "cold" else 0
if s["requests"] != want_requests or s["bad_requests"] != 0:
    problems.append(f"server saw {s['requests']} requests and {s['bad_requests']} bad ones, expected {want_requests} and 0")
if problems:
    print(f"{path}:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
EOF
        die "$1: unexpected result (kept in $OUT/runs)"
}

# One untimed run first (page cache, first connection to the server), checked.
mkdir "$WORK/cache-check"
run check-cold "$WORK/cache-check"
check check-cold cold
run check-warm "$WORK/cache-check"
check check-warm warm
log "sanity run ok: $IMAGES captions, then $IMAGES cached; $ROUNDS rounds follow"

for ((i = 1; i <= ROUNDS; i++)); do
    cache=$WORK/cache-$i
    rm -rf "$cache"
    mkdir "$cache"
    run "cold-$i" "$cache"
    check "cold-$i" cold
    run "warm-$i" "$cache"
    check "warm-$i" warm
done
mkdir "$WORK/cache-serial"
run serial "$WORK/cache-serial" CAPTION_CONCURRENCY=1
check serial cold

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_END=$(busy)

# --- summary ---------------------------------------------------------------------
REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes')"
MACHINE="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r); load average $LOAD_START at the start, $LOAD_END at the end; other compilers running at the start: ${BUSY_START:-none}, at the end: ${BUSY_END:-none}"
"$PYTHON" - "$OUT" "$ROUNDS" "$IMAGES" "$LATENCY_MS" "$RATIO_TARGET" "$WARM_TARGET_MS" \
    "$REVISION" "$MACHINE" "${PROFILE#"$OUT"/}" "$(date -u +%Y-%m-%dT%H:%MZ)" <<'EOF' | tee "$OUT/summary.md"
import json, statistics, sys
out, rounds, n, latency, ratio_target, warm_target, revision, machine, profile, when = sys.argv[1:]
rounds, n, latency, ratio_target, warm_target = int(rounds), int(n), int(latency), float(ratio_target), int(warm_target)

def load(name):
    r = json.load(open(f"{out}/runs/{name}.json"))
    s = json.load(open(f"{out}/runs/{name}.stats"))
    wall = float(open(f"{out}/runs/{name}.wall").read())
    return r, s, wall

cold_stage, slowest, fastest, ratio, overhead, peak, cold_wall = [], [], [], [], [], [], []
warm_stage, warm_wall = [], []
for i in range(1, rounds + 1):
    r, s, wall = load(f"cold-{i}")
    stage = r["timings_ms"]["captions"]
    ms = [c["ms"] for c in r["captions"]]
    cold_stage.append(stage); slowest.append(max(ms)); fastest.append(min(ms))
    ratio.append(stage / max(ms)); overhead.append(stage - max(ms))
    peak.append(s["peak_in_flight"]); cold_wall.append(wall)
    r, s, wall = load(f"warm-{i}")
    warm_stage.append(r["timings_ms"]["captions"]); warm_wall.append(wall)
sr, ss, swall = load("serial")
serial_stage = sr["timings_ms"]["captions"]
serial_ms = [c["ms"] for c in sr["captions"]]

med = statistics.median
def fmt(x, d=0):
    return f"{x:.{d}f}"
def row(label, xs, d=0, target="", result=""):
    return f"| {label} | {fmt(med(xs), d)} | {fmt(min(xs), d)} | {fmt(max(xs), d)} | {target} | {result} |"

ratio_ok = med(ratio) <= ratio_target and max(ratio) <= ratio_target
warm_ok = med(warm_stage) <= warm_target and max(warm_stage) <= warm_target
ratio_res = "pass" if ratio_ok else ("FAIL (median passes, max misses)" if med(ratio) <= ratio_target else "FAIL")
warm_res = "pass" if warm_ok else ("FAIL (median passes, max misses)" if med(warm_stage) <= warm_target else "FAIL")
print(f"## captions stage, {when}")
print()
print(f"- command: `bash bench/captions.sh` ({rounds} rounds of cold + warm; {n} distinct 64x64 PNGs as local files, vision endpoint with a fixed {latency} ms per caption)")
print(f"- revision: {revision}")
print(f"- machine: {machine}")
print(f"- profile: {profile} (in the output dir); raw data: {out}")
print()
print("| figure (ms unless said) | median | min | max | target | result |")
print("| --- | ---: | ---: | ---: | --- | --- |")
print(row("cold: `timings_ms.captions` (stage wall time)", cold_stage))
print(row("cold: slowest single caption (max of `captions[].ms`)", slowest))
print(row("cold: fastest single caption (min of `captions[].ms`)", fastest))
print(row("**cold: ratio stage / slowest**", ratio, 3, f"≤ {ratio_target}", ratio_res))
print(row("cold: stage − slowest", overhead))
print(row("cold: most requests in flight at the server", peak))
print(row("**warm (same cache): `timings_ms.captions`**", warm_stage, 0, f"≤ {warm_target} ms", warm_res))
print(row("cold: process wall time (start → exit)", cold_wall, 1))
print(row("warm: process wall time (start → exit)", warm_wall, 1))
print()
print(f"- reference, one cold run with `CAPTION_CONCURRENCY=1`: stage {serial_stage} ms "
      f"(= {serial_stage / (n * latency):.2f} × {n} × {latency} ms; {serial_stage / med(cold_stage):.1f} × the concurrent median), "
      f"single captions {min(serial_ms)}–{max(serial_ms)} ms, at most {ss['peak_in_flight']} request in flight, process {swall:.0f} ms")
print(f"- every cold run: status ok, {n} records captioned, `cached: false`, {n} requests at the server, none refused; "
      f"every warm run: {n} records `cached: true`, 0 requests")
print(f"- per round, cold stage / slowest / warm stage: " + ", ".join(
    f"{a}/{b}/{c}" for a, b, c in zip(cold_stage, slowest, warm_stage)))
print()
print(f"Targets (median and max over the rounds): concurrent captions, ratio ≤ {ratio_target}: {ratio_res}; "
      f"cached re-run ≤ {warm_target} ms: {warm_res}.")
EOF

# BENCH_STRICT=1: exit 1 when a target is missed (the default only reports).
if [[ ${BENCH_STRICT:-0} == 1 ]] && grep -q 'FAIL' "$OUT/summary.md"; then
    log "a target was missed"
    exit 1
fi
