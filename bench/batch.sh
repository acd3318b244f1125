#!/usr/bin/env bash
# bench/batch.sh: the assessor's batch-mode throughput and memory benchmark
# (see docs/BENCHMARKS.md, "Batch benchmarks").
#
#   bash bench/batch.sh
#
# A canned OpenAI-compatible endpoint (nginx on 127.0.0.1, `return 200` with a
# fixed chat completion whose content is a valid verdict) is hit, per round:
# 1. by wrk, 64 connections, 2 threads, 10 s, POSTing the request body the
#    assessor really sends (captured through an nginx proxy hop);
# 2. by the release assessor in batch mode over 10 000 JSONL profiles
#    (ASSESSOR_JOBS=64, a fresh RESULT_DIR on the same disk as /tmp), under
#    /usr/bin/time -v: wall time -> profiles/s, peak RSS;
# 3. the same over 100 000 profiles (RSS must stay flat);
# 4. breakdown variants over the 10 000 (same round): RESULT_DIR on tmpfs
#    (/dev/shm: fsync costs nothing), on disk with fsync() made a no-op
#    (LD_PRELOAD of bench/batch/nofsync.c), LLM_BACKEND=fixed on disk (no
#    HTTP) and fixed on tmpfs (the batch machinery alone); and the files alone:
#    bench/batch/write_floor.c writes 10 000 result-sized files with
#    write_atomic's syscalls from 64 threads, with both fsyncs and without.
# Then once: syscall counts of one 10 000 run under `strace -f -c`.
#
# Targets (the issue): profiles/s >= 0.5 x wrk's requests/s (same round),
# peak RSS <= 64 MiB, and the 100 000 run's peak RSS the same as the 10 000
# run's (flat: at most 10 % more). Judged on the median of the rounds.
#
# Every timed run waits until no cargo/rustc runs (the machine has 2 cores),
# and `sync`s first so an earlier run's writeback does not land in it.
# Prints a Markdown summary; wrk's output, every run's /usr/bin/time -v and
# stderr, its RSS samples, the captured request body, runs.tsv and summary.md
# stay in $BENCH_OUT (default: a new temp dir).
#
# Knobs (environment): BENCH_ROUNDS (3), BENCH_SMALL (10000), BENCH_LARGE
# (100000), BENCH_JOBS (64), BENCH_WRK_SECONDS (10), BENCH_WRK_THREADS (2),
# BENCH_DIAG (1; 0 skips step 4 and the strace run; the LD_PRELOAD and C
# variants need cc), BENCH_OUT (output dir),
# BENCH_RESULTS (parent dir of the RESULT_DIRs; default /tmp), BENCH_WAIT_MAX
# (seconds to wait for compilers before measuring anyway; 3600),
# BENCH_SKIP_BUILD=1, BENCH_NO_DEFAULT_FEATURES=1 (build without llama.cpp;
# the openai path is the same code), BENCH_STRICT=1 (exit 1 when a target is
# missed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
HERE=$ROOT/bench/batch

ROUNDS=${BENCH_ROUNDS:-3}
SMALL=${BENCH_SMALL:-10000}
LARGE=${BENCH_LARGE:-100000}
JOBS=${BENCH_JOBS:-64}
WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
DIAG=${BENCH_DIAG:-1}
WAIT_MAX=${BENCH_WAIT_MAX:-3600}
RATIO_TARGET=0.5
RSS_TARGET_KIB=$((64 * 1024))
FLAT_TOLERANCE=1.10
CONTENT='{"verdict":"accept","score":0.8,"reasons":["ok"]}'

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for knob in ROUNDS SMALL LARGE JOBS WRK_SECONDS WRK_THREADS; do
    [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$knob must be a positive integer, not '${!knob}'"
done

# --- tools -------------------------------------------------------------------
need_install=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_install+=(nginx)
command -v wrk >/dev/null 2>&1 || need_install+=(wrk)
[[ -x /usr/bin/time ]] || need_install+=(time)
command -v curl >/dev/null 2>&1 || need_install+=(curl)
command -v jq >/dev/null 2>&1 || need_install+=(jq)
command -v python3 >/dev/null 2>&1 || need_install+=(python3)
if [[ $DIAG == 1 ]] && ! command -v strace >/dev/null 2>&1; then need_install+=(strace); fi
if ((${#need_install[@]})); then
    log "installing ${need_install[*]}"
    SUDO=()
    [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WRK=$(command -v wrk)
WRK_VERSION=$({ "$WRK" -v 2>&1 || true; } | head -n 1 | cut -d' ' -f1-2)
PYTHON=$(command -v python3)

# --- a clean, reproducible environment for the assessor -----------------------
unset PROFILE_PATH RESULT_PATH RESULT_DIR RESULTS_JSONL CONFIG_PATH CACHE_DIR OPENAI_API_KEY FIXED_VERDICT \
    LOG_FORMAT RUST_LOG JOB_COMPLETION_INDEX \
    http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
for var in $(compgen -e); do
    case $var in LLM_* | ASSESSOR_* | CAPTION_* | EVAL_*) unset "$var" ;; esac
done
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# --- compilers: wait until none runs ------------------------------------------
compiling() { pgrep -x cargo >/dev/null 2>&1 || pgrep -x rustc >/dev/null 2>&1; }
busy() {
    # shellcheck disable=SC2009 # counts by name, which pgrep does not
    ps -eo comm= | grep -Ex 'cargo|cargo-clippy|rustc|cc|cc1|cc1plus|c\+\+|ld|ld\..*|llama-.*' | sort | uniq -c |
        awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $2, $1 }' || true
}
wait_quiet() {
    local waited=0
    while compiling; do
        if ((waited == 0)); then log "waiting for cargo/rustc to finish ($(busy))"; fi
        if ((waited >= WAIT_MAX)); then
            log "still compiling after ${WAIT_MAX}s; measuring anyway"
            return
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

# --- build -------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FEATURES="default features (llama included)"
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    build=(cargo build --release -p assessor --locked)
    if [[ ${BENCH_NO_DEFAULT_FEATURES:-0} == 1 ]]; then
        build+=(--no-default-features)
        FEATURES="--no-default-features (no llama.cpp)"
    fi
    wait_quiet
    log "${build[*]}"
    "${build[@]}"
else
    FEATURES="prebuilt (BENCH_SKIP_BUILD=1)"
fi
ASSESSOR=$TARGET_DIR/release/assessor
[[ -x $ASSESSOR ]] || die "release binary missing: $ASSESSOR"

# --- scratch, results and output dirs; nginx always stopped --------------------
WORK=$(mktemp -d /tmp/batch-bench-work.XXXXXX)
RESULTS=$(mktemp -d "${BENCH_RESULTS:-/tmp}/batch-bench-results.XXXXXX")
SHM=
if [[ $DIAG == 1 && -d /dev/shm && -w /dev/shm ]]; then SHM=$(mktemp -d /dev/shm/batch-bench.XXXXXX); fi
OUT=${BENCH_OUT:-$(mktemp -d /tmp/batch-bench.XXXXXX)}
mkdir -p "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
NGINX_PID=
cleanup() {
    if [[ -n $NGINX_PID ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK" "$RESULTS"
    if [[ -n $SHM ]]; then rm -rf "$SHM"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the C helpers of the breakdown (only with a C compiler) --------------------
NOFSYNC='' FLOOR=''
if [[ $DIAG == 1 ]] && command -v cc >/dev/null 2>&1; then
    cc -O2 -shared -fPIC -o "$WORK/nofsync.so" "$HERE/nofsync.c" && NOFSYNC=$WORK/nofsync.so
    cc -O2 -pthread -o "$WORK/write_floor" "$HERE/write_floor.c" && FLOOR=$WORK/write_floor
fi
if [[ $DIAG == 1 && -z $FLOOR ]]; then log "no C compiler: the LD_PRELOAD and write-floor variants are skipped"; fi

# --- the profiles ----------------------------------------------------------------
log "generating $SMALL and $LARGE profiles"
"$PYTHON" "$HERE/make_profiles.py" "$SMALL" "$WORK/profiles-small.jsonl" 1
"$PYTHON" "$HERE/make_profiles.py" "$LARGE" "$WORK/profiles-large.jsonl" 1
head -n 1 "$WORK/profiles-small.jsonl" >"$WORK/profiles-one.jsonl"
head -n 1 "$WORK/profiles-small.jsonl" >"$OUT/profile-1.json"
PROFILE_STATS=$("$PYTHON" - "$WORK/profiles-large.jsonl" <<'EOF'
import json, sys
lines = texts = 0
lo, hi, total, ids = 1 << 30, 0, 0, set()
with open(sys.argv[1], "rb") as f:
    for raw in f:
        p = json.loads(raw)
        n = len(p["text"].encode())
        lo, hi, total, lines = min(lo, n), max(hi, n), total + n, lines + 1
        ids.add(p["metadata"]["id"])
        texts += len(raw)
print(f"text {lo}-{hi} bytes (mean {total / lines:.0f}), {texts / lines:.0f} bytes per JSONL line, {len(ids)} distinct ids in {lines} lines")
EOF
)
[[ $PROFILE_STATS == *"$LARGE distinct ids in $LARGE lines"* ]] || die "the generated ids are not distinct: $PROFILE_STATS"

# --- nginx: the canned OpenAI-compatible endpoint on a free loopback port ------
# shellcheck source=bench/lib/canned-endpoint.sh
source "$ROOT/bench/lib/canned-endpoint.sh"
start_canned_endpoint "$WORK" "$CONTENT" 1024
BASE=http://127.0.0.1:$PORT

# --- helpers -------------------------------------------------------------------
# requests: nginx's total request count (this request included).
requests() { curl -sf "$BASE/stats" | awk 'NR == 3 { print $3 }'; }
# cpu_ticks PID: user + system time of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)
# tv FILE KEY: a value from /usr/bin/time -v output.
tv() { awk -F': ' -v k="$1" '{ sub(/^[ \t]+/, "", $1) } $1 == k { print $2 }' "$2"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
ASSESSOR_ENV=(LLM_BACKEND=openai LLM_BASE_URL="$BASE/v1" LLM_MODEL=canned ASSESSOR_JOBS="$JOBS"
    LOG_FORMAT=json RUST_LOG=warn)

printf 'round\tname\tn\twall_s\trss_kib\tuser_s\tsys_s\tvcsw\tivcsw\tnginx_cpu_s\tnginx_requests\tcompilers\tload\n' >"$OUT/runs.tsv"
record() { (IFS=$'\t'; echo "$*") >>"$OUT/runs.tsv"; }

# sample_rss TIME_PID FILE: the assessor's VmRSS (KiB) and threads every 0.2 s,
# as "seconds kib threads".
sample_rss() {
    local parent=$1 file=$2 child='' start=$EPOCHREALTIME key value rss _
    for _ in $(seq 200); do
        child=$(pgrep -P "$parent" | head -n 1 || true)
        [[ -n $child ]] && break
        kill -0 "$parent" 2>/dev/null || return 0
        sleep 0.01
    done
    [[ -n $child ]] || return 0
    while [[ -r /proc/$child/status ]]; do
        rss=
        while read -r key value _; do
            case $key in
                VmRSS:) rss=$value ;;
                Threads:)
                    [[ -n $rss ]] && printf '%s %s %s\n' "$(calc %.1f "$EPOCHREALTIME - $start")" "$rss" "$value"
                    break
                    ;;
            esac
        done <"/proc/$child/status" 2>/dev/null || true
        sleep 0.2
    done >"$file"
}

# run_batch ROUND NAME N INPUT RESULT_DIR EXPECT(openai|fixed) ENV...: one timed batch.
run_batch() {
    local round=$1 name=$2 n=$3 input=$4 dir=$5 expect=$6
    shift 6
    local tag=$OUT/runs/$name-$round before after c0 c1 compilers start end rc=0 tpid spid files sample
    wait_quiet
    sync
    compilers=$(busy)
    before=$(requests)
    c0=$(cpu_ticks "$NGINX_WORKER")
    log "round $round: $name ($n profiles)"
    start=$EPOCHREALTIME
    env PROFILE_PATH="$input" RESULT_DIR="$dir" "$@" \
        /usr/bin/time -v -o "$tag.time" "$ASSESSOR" >"$tag.out" 2>"$tag.err" &
    tpid=$!
    sample_rss "$tpid" "$tag.rss" &
    spid=$!
    wait "$tpid" || rc=$?
    end=$EPOCHREALTIME
    wait "$spid" || true
    c1=$(cpu_ticks "$NGINX_WORKER")
    after=$(requests)
    compilers=${compilers:-$(busy)}
    ((rc == 0)) || { tail -n 30 "$tag.err" >&2; die "$name: the assessor exited $rc"; }
    # Every profile assessed, accepted by the canned verdict, one result file each.
    grep -q "| accepted | $n |" "$tag.err" || { tail -n 20 "$tag.err" >&2; die "$name: not all $n accepted"; }
    grep -q '| errors | 0 |' "$tag.err" || die "$name: errors in the summary"
    files=$(find "$dir" -maxdepth 1 -name '*.json' -not -name '.*' | wc -l)
    ((files == n)) || die "$name: $files result files, expected $n"
    if find "$dir" -maxdepth 1 -name '.*.tmp' | grep -q .; then die "$name: temp files left behind"; fi
    sample=$dir/bench-$(printf '%06d' "$n").json
    if [[ $expect == openai ]]; then
        # One request per profile (no retry), plus the second /stats read.
        (( after - before == n + 1 )) || die "$name: nginx saw $((after - before - 1)) requests for $n profiles"
        jq -e '.status == "ok" and .verdict == "accept" and .score == 0.8 and .attempts == 1 and .decided_by == "llm"' \
            "$sample" >/dev/null || { cat "$sample" >&2; die "$name: unexpected result"; }
    else
        (( after - before == 1 )) || die "$name: the fixed backend sent requests"
        jq -e '.status == "ok" and .verdict == "accept"' "$sample" >/dev/null || { cat "$sample" >&2; die "$name: unexpected result"; }
    fi
    if [[ ! -f $OUT/result-$name.json ]]; then cp "$sample" "$OUT/result-$name.json"; fi
    # The results stay until the end (the trap removes them): on ext4 without a
    # journal, deleting thousands of files makes the next runs' file creation
    # scan past the "recently deleted" inodes (docs/BENCHMARKS.md).
    record "$round" "$name" "$n" "$(calc %.4f "$end - $start")" "$(tv 'Maximum resident set size (kbytes)' "$tag.time")" \
        "$(tv 'User time (seconds)' "$tag.time")" "$(tv 'System time (seconds)' "$tag.time")" \
        "$(tv 'Voluntary context switches' "$tag.time")" "$(tv 'Involuntary context switches' "$tag.time")" \
        "$(calc %.2f "($c1 - $c0) / $CLK_TCK")" "$((after - before - 1))" "${compilers:-none}" "$(cut -d' ' -f1 /proc/loadavg)"
}

# run_wrk ROUND: wrk against the canned endpoint with the captured body.
run_wrk() {
    local round=$1
    local tag=$OUT/runs/wrk-$round before after c0 c1 compilers summary reqs secs status sock
    wait_quiet
    sync
    compilers=$(busy)
    before=$(requests)
    c0=$(cpu_ticks "$NGINX_WORKER")
    log "round $round: wrk -t$WRK_THREADS -c$JOBS -d${WRK_SECONDS}s"
    WRK_BODY=$OUT/request-body.json /usr/bin/time -v -o "$tag.time" \
        "$WRK" -t"$WRK_THREADS" -c"$JOBS" -d"${WRK_SECONDS}s" --latency -s "$HERE/post.lua" "$ENDPOINT" >"$tag.txt" 2>&1 \
        || { cat "$tag.txt" >&2; die "wrk failed"; }
    c1=$(cpu_ticks "$NGINX_WORKER")
    after=$(requests)
    summary=$(grep '^wrk-summary ' "$tag.txt") || { cat "$tag.txt" >&2; die "wrk printed no summary"; }
    read -r _ reqs secs status sock <<<"$summary"
    ((status == 0 && sock == 0)) || { cat "$tag.txt" >&2; die "wrk: $status non-2xx responses, $sock socket errors"; }
    (( after - before - 1 >= reqs )) || die "wrk counted $reqs requests, nginx $((after - before - 1))"
    record "$round" wrk "$reqs" "$secs" "$(tv 'Maximum resident set size (kbytes)' "$tag.time")" \
        "$(tv 'User time (seconds)' "$tag.time")" "$(tv 'System time (seconds)' "$tag.time")" \
        "$(tv 'Voluntary context switches' "$tag.time")" "$(tv 'Involuntary context switches' "$tag.time")" \
        "$(calc %.2f "($c1 - $c0) / $CLK_TCK")" "$((after - before - 1))" "${compilers:-none}" "$(cut -d' ' -f1 /proc/loadavg)"
}

# run_floor ROUND NAME MODE DIR: write_floor's N result-sized files, JOBS threads.
run_floor() {
    local round=$1 name=$2 mode=$3 dir=$4
    local tag=$OUT/runs/$name-$round start end files
    wait_quiet
    sync
    log "round $round: $name (write_floor, $SMALL files, mode $mode, $JOBS threads)"
    start=$EPOCHREALTIME
    /usr/bin/time -v -o "$tag.time" "$FLOOR" "$dir" "$SMALL" "$mode" "$JOBS" >"$tag.out" 2>"$tag.err" \
        || { cat "$tag.err" >&2; die "$name: write_floor failed"; }
    end=$EPOCHREALTIME
    files=$(find "$dir" -maxdepth 1 -name '*.json' -not -name '.*' | wc -l)
    ((files == SMALL)) || die "$name: $files files, expected $SMALL"
    record "$round" "$name" "$SMALL" "$(calc %.4f "$end - $start")" "$(tv 'Maximum resident set size (kbytes)' "$tag.time")" \
        "$(tv 'User time (seconds)' "$tag.time")" "$(tv 'System time (seconds)' "$tag.time")" \
        "$(tv 'Voluntary context switches' "$tag.time")" "$(tv 'Involuntary context switches' "$tag.time")" \
        0 0 "$(b=$(busy); echo "${b:-none}")" "$(cut -d' ' -f1 /proc/loadavg)"
}

# --- capture the request body the assessor sends; a checked single run ----------
env PROFILE_PATH="$WORK/profiles-one.jsonl" RESULT_DIR="$WORK/capture" "${ASSESSOR_ENV[@]}" \
    LLM_BASE_URL="$BASE/capture/v1" "$ASSESSOR" >/dev/null 2>"$WORK/capture.err" \
    || { cat "$WORK/capture.err" >&2; die "capture: the assessor failed"; }
for _ in $(seq 20); do [[ -s $WORK/nginx/request-body.log ]] && break; sleep 0.1; done
tail -n 1 "$WORK/nginx/request-body.log" >"$OUT/request-body.json"
jq -e '.messages | length >= 2' "$OUT/request-body.json" >/dev/null || die "could not capture the request body"
jq -e '.status == "ok" and .verdict == "accept" and .score == 0.8 and .attempts == 1' \
    "$WORK/capture/bench-000001.json" >/dev/null || die "capture: unexpected result"
BODY_BYTES=$(($(stat -c %s "$OUT/request-body.json") - 1))
curl -sf -H content-type:application/json --data-binary @"$OUT/request-body.json" "$ENDPOINT" \
    | jq -e --arg c "$CONTENT" '.choices[0].message.content == $c' >/dev/null || die "the captured body is not answered"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DIRTY_START=$(awk '/^Dirty:/ { print $2 " kB" }' /proc/meminfo)
BUSY_START=$(busy)
STARTED=$(date -u +%Y-%m-%dT%H:%MZ)

# --- rounds ------------------------------------------------------------------------
for round in $(seq "$ROUNDS"); do
    run_wrk "$round"
    run_batch "$round" small "$SMALL" "$WORK/profiles-small.jsonl" "$RESULTS/small-$round" openai "${ASSESSOR_ENV[@]}"
    run_batch "$round" large "$LARGE" "$WORK/profiles-large.jsonl" "$RESULTS/large-$round" openai "${ASSESSOR_ENV[@]}"
    if [[ $DIAG == 1 ]]; then
        if [[ -n $SHM ]]; then
            run_batch "$round" tmpfs "$SMALL" "$WORK/profiles-small.jsonl" "$SHM/tmpfs-$round" openai "${ASSESSOR_ENV[@]}"
        fi
        if [[ -n $NOFSYNC ]]; then
            run_batch "$round" nofsync "$SMALL" "$WORK/profiles-small.jsonl" "$RESULTS/nofsync-$round" openai \
                "${ASSESSOR_ENV[@]}" LD_PRELOAD="$NOFSYNC"
        fi
        run_batch "$round" fixed-disk "$SMALL" "$WORK/profiles-small.jsonl" "$RESULTS/fixed-disk-$round" fixed \
            "${ASSESSOR_ENV[@]}" LLM_BACKEND=fixed
        if [[ -n $SHM ]]; then
            run_batch "$round" fixed-tmpfs "$SMALL" "$WORK/profiles-small.jsonl" "$SHM/fixed-tmpfs-$round" fixed \
                "${ASSESSOR_ENV[@]}" LLM_BACKEND=fixed
        fi
        if [[ -n $FLOOR ]]; then
            run_floor "$round" floor-fsync 2 "$RESULTS/floor-fsync-$round"
            run_floor "$round" floor-nofsync 0 "$RESULTS/floor-nofsync-$round"
        fi
    fi
done

# --- once: syscalls per profile (strace slows the run: counts only) ---------------
STRACE=
if [[ $DIAG == 1 ]] && command -v strace >/dev/null 2>&1; then
    wait_quiet
    sync
    log "strace -f -c: one $SMALL-profile run"
    env PROFILE_PATH="$WORK/profiles-small.jsonl" RESULT_DIR="$RESULTS/strace" "${ASSESSOR_ENV[@]}" \
        strace -f -c -o "$OUT/strace-small.txt" "$ASSESSOR" >/dev/null 2>"$OUT/runs/strace.err" \
        || { tail -n 20 "$OUT/runs/strace.err" >&2; die "strace run failed"; }
    STRACE=$OUT/strace-small.txt
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_END=$(busy)

# --- summary -------------------------------------------------------------------------
TSV=$OUT/runs.tsv
# vals NAME COLUMN-EXPR: one value per round (awk expression over the named columns).
vals() {
    awk -F'\t' -v name="$1" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $col["name"] == name {
            n = $col["n"]; wall = $col["wall_s"]; rss = $col["rss_kib"]; user = $col["user_s"]; sys = $col["sys_s"]
            ngx = $col["nginx_cpu_s"]; req = $col["nginx_requests"]; round = $col["round"]
            printf "%.6f\n", '"$2"'
        }' "$TSV"
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s %s", lo, hi }'; }
med() { vals "$1" "$2" | median; }
# per_round NAME EXPR FORMAT: "a / b / c" over the rounds.
per_round() { vals "$1" "$2" | awk -v f="$3" '{ printf "%s" f, (NR > 1 ? " / " : ""), $1 }'; }
# ratio of the same round: assessor rate / wrk rate.
round_ratios() {
    awk -F'\t' -v name="$1" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $col["name"] == "wrk" { wrk[$col["round"]] = $col["n"] / $col["wall_s"] }
        $col["name"] == name { rate[$col["round"]] = $col["n"] / $col["wall_s"] }
        END { for (r in rate) if (r in wrk) printf "%.6f\n", rate[r] / wrk[r] }' "$TSV"
}
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
verdict() { if "$@"; then echo pass; else echo FAIL; fi; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

WRK_RATE=$(med wrk 'n / wall')
SMALL_RATE=$(med small 'n / wall')
LARGE_RATE=$(med large 'n / wall')
SMALL_RATIO=$(round_ratios small | median)
LARGE_RATIO=$(round_ratios large | median)
SMALL_RSS=$(med small rss)
LARGE_RSS=$(med large rss)
read -r SMALL_RSS_LO SMALL_RSS_HI <<<"$(vals small rss | minmax)"
read -r LARGE_RSS_LO LARGE_RSS_HI <<<"$(vals large rss | minmax)"
FLAT=$(awk -v a="$LARGE_RSS" -v b="$SMALL_RSS" 'BEGIN { printf "%.3f", a / b }')
V_RATIO=$(verdict ge "$SMALL_RATIO" "$RATIO_TARGET")
V_RSS_SMALL=$(verdict le "$SMALL_RSS" "$RSS_TARGET_KIB")
V_RSS_LARGE=$(verdict le "$LARGE_RSS" "$RSS_TARGET_KIB")
V_FLAT=$(verdict le "$FLAT" "$FLAT_TOLERANCE")
RESULTS_FS=$(df -T "$RESULTS" | awk 'NR == 2 { print $2 " (" $1 ")" }')
if [[ $RESULTS_FS == ext4* ]]; then
    dev=$(df --output=source "$RESULTS" | tail -n 1)
    if compgen -G "/proc/fs/jbd2/$(basename "$dev")-*" >/dev/null; then RESULTS_FS+=", with a journal"; else RESULTS_FS+=", no journal"; fi
fi
REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- assessor shared Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes in the assessor')"

{
    echo "## Batch benchmark, $STARTED"
    echo
    echo "- command: \`bash bench/batch.sh\` ($ROUNDS rounds; medians of the rounds; raw data: \`$OUT\`)"
    echo "- revision: $REVISION; binary: \`$ASSESSOR\`, $FEATURES"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r); results dir on $RESULTS_FS"
    echo "- load average at start $LOAD_START, at end $LOAD_END; dirty page cache at start $DIRTY_START; compilers at start: ${BUSY_START:-none}, at end: ${BUSY_END:-none}"
    echo "- $($NGINX -v 2>&1 | sed 's/^nginx version: //'), 1 worker; $WRK_VERSION, -t$WRK_THREADS -c$JOBS -d${WRK_SECONDS}s; request body $BODY_BYTES bytes (captured from the assessor)"
    echo "- profiles: $SMALL and $LARGE JSONL lines from \`bench/batch/make_profiles.py\`, $PROFILE_STATS"
    echo "- assessor: \`PROFILE_PATH=<jsonl> RESULT_DIR=<fresh dir> ASSESSOR_JOBS=$JOBS LLM_BACKEND=openai LLM_BASE_URL=http://127.0.0.1:PORT/v1 LLM_MODEL=canned LOG_FORMAT=json RUST_LOG=warn\`, under \`/usr/bin/time -v\`"
    echo
    echo "| round | wrk req/s | $SMALL: profiles/s | ratio | peak RSS | $LARGE: profiles/s | ratio | peak RSS |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for round in $(seq "$ROUNDS"); do
        awk -F'\t' -v r="$round" '
            NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            $col["round"] == r { rate[$col["name"]] = $col["n"] / $col["wall_s"]; rss[$col["name"]] = $col["rss_kib"] }
            END {
                printf "| %d | %.0f | %.0f | %.4f | %.1f MiB | %.0f | %.4f | %.1f MiB |\n", r, rate["wrk"],
                    rate["small"], rate["small"] / rate["wrk"], rss["small"] / 1024,
                    rate["large"], rate["large"] / rate["wrk"], rss["large"] / 1024
            }' "$TSV"
    done
    printf '| **median** | **%.0f** | **%.0f** | **%.4f** | **%s** | **%.0f** | **%.4f** | **%s** |\n' \
        "$WRK_RATE" "$SMALL_RATE" "$SMALL_RATIO" "$(mib "$SMALL_RSS")" "$LARGE_RATE" "$LARGE_RATIO" "$(mib "$LARGE_RSS")"
    echo
    echo "| target | measured (median of $ROUNDS) | target | result |"
    echo "| --- | ---: | --- | --- |"
    echo "| $SMALL profiles: profiles/s ÷ wrk req/s (same round) | $(calc %.4f "$SMALL_RATIO") ($(calc %.0f "$SMALL_RATE") / $(calc %.0f "$WRK_RATE")) | ≥ $RATIO_TARGET | $V_RATIO |"
    echo "| $SMALL profiles: peak RSS | $(mib "$SMALL_RSS") ($(mib "$SMALL_RSS_LO")–$(mib "$SMALL_RSS_HI")) | ≤ 64 MiB | $V_RSS_SMALL |"
    echo "| $LARGE profiles: peak RSS | $(mib "$LARGE_RSS") ($(mib "$LARGE_RSS_LO")–$(mib "$LARGE_RSS_HI")) | ≤ 64 MiB | $V_RSS_LARGE |"
    echo "| flat: RSS $LARGE ÷ RSS $SMALL | $FLAT | ≤ $FLAT_TOLERANCE | $V_FLAT |"
    echo "| (report) $LARGE profiles: profiles/s ÷ wrk req/s | $(calc %.4f "$LARGE_RATIO") | — | |"
    echo
    echo "RSS and threads during the $LARGE runs (VmRSS and Threads sampled every 0.2 s; at 10 %, 50 %, 90 % of the samples, and the last):"
    echo
    for round in $(seq "$ROUNDS"); do
        f=$OUT/runs/large-$round.rss
        [[ -s $f ]] || continue
        awk -v r="$round" '{ t[NR] = $1; k[NR] = $2; th[NR] = $3 }
            END { i1 = int(NR * 0.1) + 1; i5 = int(NR * 0.5) + 1; i9 = int(NR * 0.9) + 1; if (i9 > NR) i9 = NR
                printf "- round %d: %d samples; %.1f s: %.1f MiB, %d threads; %.1f s: %.1f MiB, %d; %.1f s: %.1f MiB, %d; %.1f s: %.1f MiB, %d\n", r, NR,
                    t[i1], k[i1] / 1024, th[i1], t[i5], k[i5] / 1024, th[i5], t[i9], k[i9] / 1024, th[i9], t[NR], k[NR] / 1024, th[NR] }' "$f"
    done
    echo
    echo "Breakdown, items per second and CPU per item (medians of the rounds; ÷ wrk: of the same round; CPU: user + system from /usr/bin/time; nginx's worker from /proc):"
    echo
    echo "| run | items/s | ÷ wrk | CPU µs/item (user + sys) | nginx CPU µs/request | context switches/item | peak RSS |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    cpu_row() {
        local name=$1 label=$2
        vals "$name" 'n' | grep -q . || return 0
        printf '| %s | %.0f | %s | %.1f (%.1f + %.1f) | %s | %.1f | %s |\n' "$label" "$(med "$name" 'n / wall')" \
            "$(if [[ $name == wrk ]]; then echo 1; else calc %.4f "$(round_ratios "$name" | median)"; fi)" \
            "$(med "$name" '(user + sys) / n * 1e6')" "$(med "$name" 'user / n * 1e6')" "$(med "$name" 'sys / n * 1e6')" \
            "$(if [[ $name == fixed-* || $name == floor-* ]]; then echo —; else calc %.1f "$(med "$name" 'ngx / req * 1e6')"; fi)" \
            "$(med "$name" "(\$col[\"vcsw\"] + \$col[\"ivcsw\"]) / n")" "$(mib "$(med "$name" rss)")"
    }
    cpu_row wrk "wrk, -c$JOBS (requests)"
    cpu_row small "assessor, $SMALL, results on disk"
    cpu_row large "assessor, $LARGE, results on disk"
    cpu_row tmpfs "assessor, $SMALL, results on tmpfs /dev/shm"
    cpu_row nofsync "assessor, $SMALL, results on disk, fsync() a no-op (LD_PRELOAD)"
    cpu_row fixed-disk "LLM_BACKEND=fixed, $SMALL, results on disk"
    cpu_row fixed-tmpfs "LLM_BACKEND=fixed, $SMALL, results on tmpfs"
    cpu_row floor-fsync "write_floor (C): $SMALL files, both fsyncs, $JOBS threads, disk"
    cpu_row floor-nofsync "write_floor (C): $SMALL files, no fsync, $JOBS threads, disk"
    if [[ -n $STRACE ]]; then
        echo
        echo "Syscalls per profile, one $SMALL-profile run under \`strace -f -c\` (results on disk; the most frequent):"
        echo
        echo "| syscall | calls | per profile | errors |"
        echo "| --- | ---: | ---: | ---: |"
        awk -v n="$SMALL" '
            /^-/ { sep++; next }
            sep == 1 && NF >= 5 {
                name = $NF; calls = $4; errors = (NF == 6 ? $5 : 0)
                printf "%s %d %d\n", name, calls, errors
            }' "$STRACE" | sort -k2,2nr | head -n 12 |
            awk -v n="$SMALL" '{ printf "| %s | %d | %.2f | %d |\n", $1, $2, $2 / n, $3 }'
    fi
    echo
    echo "Per-round figures: \`$TSV\`."
} | tee "$OUT/summary.md"

# BENCH_STRICT=1: exit 1 when a target is missed (the default only reports).
if [[ ${BENCH_STRICT:-0} == 1 ]] && grep -q '| FAIL |' "$OUT/summary.md"; then
    log "a target was missed"
    exit 1
fi
