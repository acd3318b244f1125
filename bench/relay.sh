#!/usr/bin/env bash
# bench/relay.sh: the relay's reproducible benchmarks (see docs/BENCHMARKS.md).
#
#   bash bench/relay.sh
#
# 1. latency from the rename of a result into the watched directory to its
#    receipt at a local notifier (bench/relay/notifier.py), over 500 results
#    renamed in one at a time (bench/relay/driver.py), for the relay and, on
#    fresh directories against the same notifier, for the peer pipeline
#    `inotifywait -m -e moved_to,close_write DIR | while read f; do curl …; done`
#    (bench/relay/peer.sh); then, for context, the relay with the watched
#    directory on tmpfs, and in forced polling mode (on disk and on tmpfs);
# 2. an idle relay (RELAY_EXPECT=0, empty directory) for 10 s: CPU ticks,
#    wake-ups, threads, VmRSS/VmHWM, exit code on SIGTERM; with an http:// and
#    an https:// notifier URL;
# 3. the stripped release binary size of relay.
#
# Prints a Markdown summary; the per-run JSON (every latency), the notifier's
# receipt log, the relay logs and summary.md stay in $BENCH_OUT (default: a
# new temp dir).
#
# Knobs (environment): BENCH_RELAY_COUNT (500), BENCH_RELAY_GAP_MS (10),
# BENCH_RELAY_IDLE_S (10), BENCH_RELAY_POLL (50ms), BENCH_RELAY_TMP (where the
# watched directories live; default /tmp, a disk), BENCH_OUT, BENCH_SKIP_BUILD=1,
# BENCH_STRICT=1 (exit 1 when a target is missed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
HERE=$ROOT/bench/relay

COUNT=${BENCH_RELAY_COUNT:-500}
GAP_MS=${BENCH_RELAY_GAP_MS:-10}
IDLE_S=${BENCH_RELAY_IDLE_S:-10}
POLL=${BENCH_RELAY_POLL:-50ms}
TMP_BASE=${BENCH_RELAY_TMP:-/tmp}
P50_TARGET_MS=2
P99_TARGET_MS=10
MEDIAN_RATIO_TARGET=1.0
IDLE_RSS_TARGET_KIB=$((8 * 1024))
SIZE_TARGET_BYTES=$((8 * 1024 * 1024))

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- tools -------------------------------------------------------------------
need_install=()
command -v inotifywait >/dev/null 2>&1 || need_install+=(inotify-tools)
command -v curl >/dev/null 2>&1 || need_install+=(curl)
command -v python3 >/dev/null 2>&1 || need_install+=(python3)
command -v jq >/dev/null 2>&1 || need_install+=(jq)
command -v setsid >/dev/null 2>&1 || need_install+=(util-linux)
[[ -x /usr/bin/time ]] || need_install+=(time)
if ((${#need_install[@]})); then
    log "installing ${need_install[*]}"
    SUDO=()
    [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
PYTHON=$(command -v python3)

# --- a clean, reproducible environment for the relay and curl -----------------
unset RESULT_PATH WATCH_DIR PROFILE_PATH NOTIFIER_URL NOTIFIER_TOKEN NOTIFIER_TOKEN_FILE \
    WEBHOOK_SECRET WEBHOOK_SECRET_FILE LOG_FORMAT RUST_LOG \
    http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
for var in $(compgen -e); do
    case $var in RELAY_*) unset "$var" ;; esac
done
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# --- build -------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release -p relay"
    cargo build --release -p relay
fi
RELAY=$TARGET_DIR/release/relay
[[ -x $RELAY ]] || die "release binary missing: $RELAY"

# --- scratch and output dirs; every process we start is stopped ----------------
WORK=$(mktemp -d "$TMP_BASE/relay-bench-work.XXXXXX")
OUT=${BENCH_OUT:-$(mktemp -d /tmp/relay-bench.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PIDS=()     # processes, stopped with SIGTERM
PGROUPS=()  # process groups (the peer pipeline), stopped with SIGTERM
cleanup() {
    local p
    for p in "${PGROUPS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PGROUPS[@]}" "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
    if [[ -n ${SHM_WORK:-} ]]; then rm -rf "$SHM_WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the notifier on a free loopback port ---------------------------------------
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=
for candidate in $(shuf -i 20000-60999 -n 50); do
    if port_is_free "$candidate"; then PORT=$candidate; break; fi
done
[[ -n $PORT ]] || die "no free port found"
RECEIPTS=$OUT/receipts.log
: >"$RECEIPTS"
"$PYTHON" "$HERE/notifier.py" "$PORT" "$RECEIPTS" 2>"$OUT/notifier.err" &
NOTIFIER_PID=$!
PIDS+=("$NOTIFIER_PID")
URL=http://127.0.0.1:$PORT/hook
for _ in $(seq 50); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && break
    kill -0 "$NOTIFIER_PID" 2>/dev/null || { cat "$OUT/notifier.err" >&2; die "the notifier did not start"; }
    sleep 0.1
done
# Sanity: a POST is answered 200 and logged with its id.
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -H 'webhook-id: msg_check' \
    --data-binary '{"verdict":"accept","id":"check-000001"}' "$URL")
[[ $code == 200 ]] || die "the notifier answered $code"
sleep 0.1
grep -q ' check-000001 msg_check ' "$RECEIPTS" || die "the notifier did not log the check request"
log "notifier (pid $NOTIFIER_PID) at $URL, receipts in $RECEIPTS"

# --- helpers ---------------------------------------------------------------------
# forget PID: a reaped process is no longer ours to stop (its id may be reused).
forget() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
    keep=()
    for p in "${PGROUPS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PGROUPS=("${keep[@]}")
}
has_inotify() { # has_inotify PID: the process holds an inotify instance
    local fd
    for fd in /proc/"$1"/fd/*; do
        [[ $(readlink "$fd" 2>/dev/null) == anon_inode:inotify ]] && return 0
    done
    return 1
}
wait_exit() { # wait_exit PID SECONDS: 0 once PID is gone
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}
drive() { # drive NAME DIR
    "$PYTHON" "$HERE/driver.py" --dir "$2" --prefix "$1" --count "$COUNT" --gap-ms "$GAP_MS" \
        --receipts "$RECEIPTS" --out "$OUT/$1.json" >&2 || die "$1: receipts missing"
}
# latency_relay NAME DIR [ENV...]: one relay run of COUNT results; checks exit 0
# and one delivery record per result.
latency_relay() {
    local name=$1 dir=$2; shift 2
    mkdir -p "$dir"
    log "latency: $name ($COUNT results, ${GAP_MS} ms apart, $dir)"
    env WATCH_DIR="$dir" RELAY_EXPECT="$COUNT" NOTIFIER_URL="$URL" LOG_FORMAT=json RUST_LOG=warn \
        RELAY_WAIT_TIMEOUT=10m "$@" /usr/bin/time -f '%U %S %M' -o "$OUT/$name.time" \
        "$RELAY" >"$OUT/$name.log" 2>&1 &
    local tpid=$! pid='' i rc
    PIDS+=("$tpid")
    for ((i = 0; i < 100; i++)); do
        pid=$(pgrep -P "$tpid" -x relay || true)
        if [[ -n $pid ]]; then
            if [[ " $* " == *RELAY_POLL_INTERVAL=* ]] || has_inotify "$pid"; then break; fi
        fi
        kill -0 "$tpid" 2>/dev/null || { cat "$OUT/$name.log" >&2; die "$name: the relay exited at start"; }
        sleep 0.05
    done
    sleep 0.3 # let it finish its first scan and park
    THREADS_UNDER_LOAD=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo '?')
    drive "$name" "$dir"
    wait_exit "$tpid" 30 || die "$name: the relay did not exit after $COUNT results"
    rc=0
    wait "$tpid" || rc=$?
    forget "$tpid"
    [[ $rc == 0 ]] || { cat "$OUT/$name.log" >&2; die "$name: the relay exited $rc"; }
    local records
    records=$(find "$dir/.relay" -name '*.delivered' | wc -l)
    [[ $records == "$COUNT" ]] || die "$name: $records delivery records, expected $COUNT"
    jq -e '.missing == 0 and .duplicates == 0 and .bad_requests == 0 and .without_webhook_id == 0' \
        "$OUT/$name.json" >/dev/null || die "$name: unexpected receipts (see $OUT/$name.json)"
}
latency_peer() {
    local name=$1 dir=$2
    mkdir -p "$dir"
    log "latency: $name ($COUNT results, ${GAP_MS} ms apart, $dir)"
    setsid bash "$HERE/peer.sh" "$dir" "$URL" >"$OUT/$name.log" 2>&1 &
    local pgid=$! i
    PGROUPS+=("$pgid")
    for ((i = 0; i < 100; i++)); do
        grep -q 'Watches established' "$OUT/$name.log" && break
        kill -0 "$pgid" 2>/dev/null || { cat "$OUT/$name.log" >&2; die "$name: the pipeline exited at start"; }
        sleep 0.05
    done
    sleep 0.3
    drive "$name" "$dir"
    kill -TERM -- "-$pgid" 2>/dev/null || true
    wait "$pgid" 2>/dev/null || true
    forget "$pgid"
    jq -e '.missing == 0 and .duplicates == 0 and .bad_requests == 0' \
        "$OUT/$name.json" >/dev/null || die "$name: unexpected receipts (see $OUT/$name.json)"
}

# --- 1. latency: rename -> notifier receipt ------------------------------------------
latency_relay relay "$WORK/relay"
THREADS_RELAY=$THREADS_UNDER_LOAD
latency_peer pipeline "$WORK/pipeline"
SHM_WORK=
if [[ -d /dev/shm && -w /dev/shm && $TMP_BASE != /dev/shm ]]; then
    SHM_WORK=$(mktemp -d /dev/shm/relay-bench.XXXXXX)
    latency_relay relay-tmpfs "$SHM_WORK/relay"
fi
latency_relay relay-poll "$WORK/relay-poll" RELAY_POLL_INTERVAL="$POLL"
if [[ -n $SHM_WORK ]]; then latency_relay relay-poll-tmpfs "$SHM_WORK/relay-poll" RELAY_POLL_INTERVAL="$POLL"; fi

# --- 2. idle: CPU ticks, wake-ups, memory -----------------------------------------------
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
wakeups() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# idle_start NAME URL: start an idle relay on an empty directory; sets IDLE_PID.
idle_start() {
    mkdir -p "$WORK/$1"
    env WATCH_DIR="$WORK/$1" RELAY_EXPECT=0 NOTIFIER_URL="$2" LOG_FORMAT=json RUST_LOG=warn \
        "$RELAY" >"$OUT/$1.log" 2>&1 &
    IDLE_PID=$!
    PIDS+=("$IDLE_PID")
}
log "idle: two relays (http:// and https:// notifier), 1 s to settle, then ${IDLE_S} s"
idle_start idle-http "$URL"
PID_HTTP=$IDLE_PID
idle_start idle-https "https://127.0.0.1:$PORT/hook"
PID_HTTPS=$IDLE_PID
sleep 1
for p in "$PID_HTTP" "$PID_HTTPS"; do
    kill -0 "$p" 2>/dev/null || die "an idle relay exited at start (see $OUT/idle-*.log)"
done
# shellcheck disable=SC2034 # read through ${!name} in the summary
T0_HTTP=$(ticks "$PID_HTTP") W0_HTTP=$(wakeups "$PID_HTTP")
# shellcheck disable=SC2034
T0_HTTPS=$(ticks "$PID_HTTPS") W0_HTTPS=$(wakeups "$PID_HTTPS")
sleep "$IDLE_S"
# shellcheck disable=SC2034
T1_HTTP=$(ticks "$PID_HTTP") W1_HTTP=$(wakeups "$PID_HTTP")
# shellcheck disable=SC2034
T1_HTTPS=$(ticks "$PID_HTTPS") W1_HTTPS=$(wakeups "$PID_HTTPS")
for v in HTTP HTTPS; do
    pid_var=PID_$v
    p=${!pid_var}
    printf -v "RSS_$v" '%s' "$(status_kib "$p" VmRSS)"
    printf -v "HWM_$v" '%s' "$(status_kib "$p" VmHWM)"
    printf -v "THR_$v" '%s' "$(status_kib "$p" Threads)"
    printf -v "TNAMES_$v" '%s' "$(cat /proc/"$p"/task/*/comm | sort | uniq -c |
        awk '{ n = $1; sub(/^ *[0-9]+ /, ""); printf "%s`%s`×%s", (NR > 1 ? ", " : ""), $0, n }')"
    kill -TERM "$p"
    rc=0
    wait_exit "$p" 25 || die "idle relay $p did not stop after SIGTERM"
    wait "$p" || rc=$?
    forget "$p"
    printf -v "RC_$v" '%s' "$rc"
done

# --- 3. binary size ---------------------------------------------------------------------
RELAY_SIZE=$(stat -c %s "$RELAY")
stripped() { if readelf -S "$1" 2>/dev/null | grep -q "\.symtab"; then echo "has .symtab"; else echo "stripped (no .symtab)"; fi; }

# --- summary ----------------------------------------------------------------------------
q() { jq -r "$2" "$OUT/$1.json"; }
f2() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
pf() { if le "$1" "$2"; then echo pass; else echo FAIL; fi; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB (%d bytes)", b / 1048576, b }'; }
kib_mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
cpu_ms() { awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$OUT/$1.time"; }
peak_kib() { awk '{ print $3 }' "$OUT/$1.time"; }
row() { # row NAME LABEL
    echo "| $2 | $(q "$1" .received)/$COUNT | $(f2 "$(q "$1" .min_ms)") | $(f2 "$(q "$1" .p50_ms)") | $(f2 "$(q "$1" .p90_ms)") | $(f2 "$(q "$1" .p99_ms)") | $(f2 "$(q "$1" .max_ms)") | $(q "$1" .over_10ms) |"
}
RELAY_P50=$(q relay .p50_ms) RELAY_P99=$(q relay .p99_ms) PIPE_P50=$(q pipeline .p50_ms)
RATIO=$(awk -v a="$RELAY_P50" -v b="$PIPE_P50" 'BEGIN { printf "%.2f", a / b }')
# shellcheck disable=SC2009 # pgrep -x cannot take a pattern longer than 15 characters
# Compilers on the machine, by process name (`pgrep -f cargo` would also match
# any process whose command line merely mentions ~/.cargo/bin).
BUSY=$(ps -eo comm= | grep -Ex 'cargo|cargo-clippy|rustc|cc|cc1|cc1plus|c\+\+|ld|ld\..*' | sort | uniq -c |
    awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $2, $1 }' || true)

{
    echo "## Relay benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "- command: \`bash bench/relay.sh\` ($COUNT results per latency run, renamed ${GAP_MS} ms apart; idle ${IDLE_S} s)"
    echo "- revision: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- relay shared Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted relay/shared changes')"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), compilers running at the end: ${BUSY:-none}"
    echo "- disk: $(awk '/^Dirty:/ { print $2 " kB" }' /proc/meminfo) dirty page cache, $(if [[ -r /proc/pressure/io ]]; then awk '$1 == "some" { print "io pressure " $2 " " $3 }' /proc/pressure/io; else echo "no /proc/pressure/io"; fi) (at the end; the relay fsyncs a delivery record per result, so a busy disk shows in its tail)"
    echo "- watched directories under \`$TMP_BASE\` ($(df -PT "$TMP_BASE" | awk 'NR == 2 { print $2 }')); notifier: \`bench/relay/notifier.py\` ($("$PYTHON" -V 2>&1)); $(inotifywait --help 2>&1 | head -n 1); $(curl --version | head -n 1 | cut -d' ' -f1-2)"
    echo "- TLS roots for https:// (rustls-native-certs): SSL_CERT_FILE=${SSL_CERT_FILE:-unset}, SSL_CERT_DIR=${SSL_CERT_DIR:-unset}"
    echo "- raw data: \`$OUT\`"
    echo
    echo "### Rename → notifier receipt (ms)"
    echo
    echo "| run | received | min | p50 | p90 | p99 | max | > 10 ms |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    row relay "relay (inotify)"
    row pipeline "\`inotifywait | while read; curl\`"
    if [[ -n $SHM_WORK ]]; then row relay-tmpfs "relay (inotify), directory on tmpfs"; fi
    row relay-poll "relay, \`RELAY_POLL_INTERVAL=$POLL\`"
    if [[ -n $SHM_WORK ]]; then row relay-poll-tmpfs "relay, \`RELAY_POLL_INTERVAL=$POLL\`, directory on tmpfs"; fi
    echo
    echo "Relay CPU time over the $COUNT results: $(cpu_ms relay) ms ($(awk -v c="$(cpu_ms relay)" -v n="$COUNT" 'BEGIN { printf "%.2f", c / n }') ms per result), peak RSS $(kib_mib "$(peak_kib relay)"), $THREADS_RELAY threads; polling: $(cpu_ms relay-poll) ms."
    echo
    echo "### Targets"
    echo
    echo "| target | measured | result |"
    echo "| --- | --- | --- |"
    echo "| relay p50 ≤ $P50_TARGET_MS ms | $(f2 "$RELAY_P50") ms | $(pf "$RELAY_P50" "$P50_TARGET_MS") |"
    echo "| relay p99 ≤ $P99_TARGET_MS ms | $(f2 "$RELAY_P99") ms | $(pf "$RELAY_P99" "$P99_TARGET_MS") |"
    echo "| relay median ≤ pipeline median | $(f2 "$RELAY_P50") / $(f2 "$PIPE_P50") ms = ${RATIO}× | $(pf "$RATIO" "$MEDIAN_RATIO_TARGET") |"
    for v in HTTP HTTPS; do
        t0=T0_$v t1=T1_$v w0=W0_$v w1=W1_$v rss=RSS_$v hwm=HWM_$v thr=THR_$v rc=RC_$v names=TNAMES_$v
        lower=${v,,}
        d=$((${!t1} - ${!t0}))
        echo "| idle ${IDLE_S} s, $lower:// notifier: CPU ticks = 0 | $d ticks ($((${!w1} - ${!w0})) context switches; ${!thr} threads: ${!names}) | $(if ((d == 0)); then echo pass; else echo FAIL; fi) |"
        if [[ $v == HTTP ]]; then
            echo "| idle, http:// notifier: VmRSS ≤ 8 MiB | VmRSS $(kib_mib "${!rss}"), VmHWM $(kib_mib "${!hwm}") | $(pf "${!rss}" "$IDLE_RSS_TARGET_KIB") |"
        else
            echo "| idle, https:// notifier: VmRSS (report) | VmRSS $(kib_mib "${!rss}"), VmHWM $(kib_mib "${!hwm}") | $(if le "${!rss}" "$IDLE_RSS_TARGET_KIB"; then echo "report (≤ 8 MiB)"; else echo "report (> 8 MiB)"; fi) |"
        fi
        echo "| idle, $lower://: SIGTERM → exit 0 | exit ${!rc} | $(if [[ ${!rc} == 0 ]]; then echo pass; else echo FAIL; fi) |"
    done
    echo "| stripped relay binary ≤ 8 MiB | $(mib "$RELAY_SIZE"), $(stripped "$RELAY") | $(pf "$RELAY_SIZE" "$SIZE_TARGET_BYTES") |"
} | tee "$OUT/summary.md"

# BENCH_STRICT=1: exit 1 when a target is missed (the default only reports).
if [[ ${BENCH_STRICT:-0} == 1 ]] && grep -q '| FAIL |' "$OUT/summary.md"; then
    log "a target was missed"
    exit 1
fi
