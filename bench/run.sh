#!/usr/bin/env bash
# bench/run.sh: the assessor's reproducible benchmarks (see docs/BENCHMARKS.md).
#
#   bash bench/run.sh
#
# 1. process start -> result written, `fixed` backend, with and without rules,
#    against /bin/true and `cp profile result` in the same hyperfine run;
# 2. one profile judged by a canned OpenAI-compatible endpoint (nginx on
#    127.0.0.1), against curl posting the same request body in the same run;
# 3. the stripped release binary sizes of assessor and relay;
# 4. peak RSS (/usr/bin/time) of the runs above and of their peers;
# and a breakdown (fsync of the result, TLS root loading) as same-run variants.
#
# Prints a Markdown summary; hyperfine's JSON/Markdown exports, the captured
# request body and summary.md stay in $BENCH_OUT (default: a new temp dir).
#
# Knobs (environment): BENCH_WARMUP (5), BENCH_RUNS (100), BENCH_RSS_RUNS (5),
# BENCH_OUT (output dir), BENCH_PROFILE (profile JSON), BENCH_SKIP_BUILD=1,
# BENCH_STRICT=1 (exit 1 when a target is missed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

WARMUP=${BENCH_WARMUP:-5}
RUNS=${BENCH_RUNS:-100}
RSS_RUNS=${BENCH_RSS_RUNS:-5}
RULES='{"price":{"max":425000},"location":["bristol"],"forbid":["shared ownership","retirement","\\bauction\\b"]}'
FIXED_TARGET_MS=10
OPENAI_TARGET_RATIO=1.5

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- tools -------------------------------------------------------------------
need_install=()
command -v hyperfine >/dev/null 2>&1 || need_install+=(hyperfine)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_install+=(nginx)
[[ -x /usr/bin/time ]] || need_install+=(time)
command -v curl >/dev/null 2>&1 || need_install+=(curl)
command -v jq >/dev/null 2>&1 || need_install+=(jq)
if ((${#need_install[@]})); then
    log "installing ${need_install[*]}"
    SUDO=()
    [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- a clean, reproducible environment for the assessor and curl -------------
unset PROFILE_PATH RESULT_PATH CONFIG_PATH CACHE_DIR OPENAI_API_KEY FIXED_VERDICT LOG_FORMAT RUST_LOG \
    http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
for var in $(compgen -e); do
    case $var in LLM_* | ASSESSOR_*) unset "$var" ;; esac
done
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# --- build -------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release -p assessor -p relay"
    cargo build --release -p assessor -p relay
fi
ASSESSOR=$TARGET_DIR/release/assessor
RELAY=$TARGET_DIR/release/relay
[[ -x $ASSESSOR && -x $RELAY ]] || die "release binaries missing under $TARGET_DIR/release"

# --- the profile ---------------------------------------------------------------
# BENCH_PROFILE, else the first example profile (one with a figure in its price
# first) that the benchmark rules pass, so the rules run in full and then the
# backend decides; else the first example profile; else examples/samples/s01.json.
pick_profile() {
    local candidate first='' pass
    local -a priced=() others=()
    shopt -s nullglob
    for candidate in examples/*.json examples/*/*.json; do
        jq -e 'type == "object" and (has("text") or has("metadata"))' "$candidate" >/dev/null 2>&1 || continue
        first=${first:-$candidate}
        # Prefer a listing with a figure in its price, so the price rule really parses one.
        if jq -e '(.metadata.price // "") | tostring | test("[0-9]")' "$candidate" >/dev/null 2>&1; then
            priced+=("$candidate")
        else
            others+=("$candidate")
        fi
    done
    shopt -u nullglob
    for candidate in "${priced[@]}" "${others[@]}"; do
        pass=$(env PROFILE_PATH="$candidate" RESULT_PATH=- LLM_BACKEND=fixed ASSESSOR_RULES="$RULES" \
            "$ASSESSOR" 2>/dev/null | jq -r 'select(.status == "ok" and .decided_by != "rules") | "yes"' 2>/dev/null || true)
        if [[ $pass == yes ]]; then
            echo "$candidate"
            return
        fi
    done
    echo "${first:-examples/samples/s01.json}"
}
PROFILE=${BENCH_PROFILE:-$(pick_profile)}
[[ -f $PROFILE ]] || die "no profile: $PROFILE (set BENCH_PROFILE)"
PROFILE=$(cd "$(dirname "$PROFILE")" && pwd)/$(basename "$PROFILE")

# --- scratch and output dirs; nginx always stopped ----------------------------
WORK=$(mktemp -d /tmp/assessor-bench-work.XXXXXX)
OUT=${BENCH_OUT:-$(mktemp -d /tmp/assessor-bench.XXXXXX)}
mkdir -p "$OUT"
NGINX_PID=
cleanup() {
    if [[ -n $NGINX_PID ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- nginx: a canned OpenAI-compatible endpoint on a free loopback port --------
CONTENT='{"verdict":"accept","score":0.9,"reasons":["canned"]}'
# shellcheck source=bench/lib/canned-endpoint.sh
source "$ROOT/bench/lib/canned-endpoint.sh"
start_canned_endpoint "$WORK" "$CONTENT" 256

# --- helpers -------------------------------------------------------------------
RESULT=$WORK/r.json
BASE_ENV=(PROFILE_PATH="$PROFILE" RESULT_PATH="$RESULT" LOG_FORMAT=json)
FIXED_ENV=("${BASE_ENV[@]}" LLM_BACKEND=fixed)
RULES_ENV=("${FIXED_ENV[@]}" ASSESSOR_RULES="$RULES")
OPENAI_ENV=("${BASE_ENV[@]}" LLM_BACKEND=openai LLM_BASE_URL="http://127.0.0.1:$PORT/v1" LLM_MODEL=canned)

# check_result NAME JQ-FILTER: the last run's result must satisfy the filter.
check_result() {
    jq -e "$2" "$RESULT" >/dev/null || { cat "$RESULT" >&2; die "$1: unexpected result"; }
}
# once NAME ENV...: one run of the assessor, which must exit 0 and write a result.
once() {
    local name=$1; shift
    rm -f "$RESULT"
    env "$@" "$ASSESSOR" 2>"$WORK/stderr.log" || { cat "$WORK/stderr.log" >&2; die "$name: the assessor failed"; }
    [[ -s $RESULT ]] || die "$name: no result written"
}
# median_ms FILE INDEX / min_ms FILE INDEX
median_ms() { jq -r ".results[$2].median * 1000" "$1"; }
min_ms() { jq -r ".results[$2].min * 1000" "$1"; }
# hf NAME ENV... -- COMMAND...: one hyperfine run, no intermediate shell.
hf() {
    local name=$1; shift
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    log "hyperfine: $name"
    env "${envs[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --time-unit millisecond \
        --export-json "$OUT/$name.json" --export-markdown "$OUT/$name.md" "$@" >"$OUT/$name.txt" 2>&1 \
        || { cat "$OUT/$name.txt" >&2; die "$name: hyperfine failed"; }
}
# peak_rss_kib COMMAND...: the largest max-RSS over RSS_RUNS runs, in KiB.
peak_rss_kib() {
    local max=0 kib
    for _ in $(seq "$RSS_RUNS"); do
        /usr/bin/time -f '%M' -o "$WORK/rss" "$@" >/dev/null 2>&1 || die "rss: $* failed"
        kib=$(tail -n 1 "$WORK/rss")
        if ((kib > max)); then max=$kib; fi
    done
    echo "$max"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
fmt_ms() { awk -v a="$1" 'BEGIN { printf "%.2f ms", a }'; }
# cell FILE INDEX: "median (min)"
cell() { awk -v a="$(median_ms "$1" "$2")" -v b="$(min_ms "$1" "$2")" 'BEGIN { printf "%.2f ms (min %.2f)", a, b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# --- sanity: every configuration assesses the profile ---------------------------
once fixed "${FIXED_ENV[@]}"
check_result fixed '.status == "ok" and .verdict == "accept"'
once rules "${RULES_ENV[@]}"
check_result rules '.status == "ok" and .verdict != null'
RULES_DECIDED_BY=$(jq -r '.decided_by' "$RESULT")
# Capture the request body the assessor really sends, for curl to post.
once capture "${BASE_ENV[@]}" LLM_BACKEND=openai LLM_BASE_URL="http://127.0.0.1:$PORT/capture/v1" LLM_MODEL=canned
check_result capture '.status == "ok" and .verdict == "accept" and .score == 0.9'
for _ in $(seq 20); do [[ -s $WORK/nginx/request-body.log ]] && break; sleep 0.1; done
tail -n 1 "$WORK/nginx/request-body.log" >"$OUT/request-body.json"
jq -e '.messages | length >= 2' "$OUT/request-body.json" >/dev/null || die "could not capture the request body"
cp "$OUT/request-body.json" "$WORK/body.json"
once openai "${OPENAI_ENV[@]}"
check_result openai '.status == "ok" and .verdict == "accept" and .score == 0.9 and .attempts == 1'

# --- 1. fixed backend: process start -> result written ---------------------------
CP_CMD="cp $PROFILE $WORK/cp.json"
hf fixed "${FIXED_ENV[@]}" -- "$ASSESSOR" /bin/true "$CP_CMD"
check_result fixed '.status == "ok" and .verdict == "accept"'
hf fixed-rules "${RULES_ENV[@]}" -- "$ASSESSOR" /bin/true "$CP_CMD"
check_result fixed-rules '.status == "ok"'

# --- 2. canned OpenAI-compatible endpoint vs curl ----------------------------------
CURL_CMD="curl -sS --fail -o $WORK/curl.json -H content-type:application/json --data-binary @$WORK/body.json $ENDPOINT"
hf openai "${OPENAI_ENV[@]}" -- "$ASSESSOR" "$CURL_CMD"
check_result openai '.status == "ok" and .verdict == "accept" and .score == 0.9'
jq -e '.choices[0].message.content' "$WORK/curl.json" >/dev/null || die "curl did not get the completion"

# --- breakdown: what the assessor's time goes on (same-run variants) ---------------
# Every variant is run through `env` so each pays the same extra exec.
# a) the result file's two fsyncs: result on disk vs tmpfs vs stdout;
# b) TLS root loading (rustls-native-certs reads $SSL_CERT_FILE and every file in
#    $SSL_CERT_DIR, by default the CA bundle and /etc/ssl/certs): default vs an
#    empty SSL_CERT_DIR vs an empty SSL_CERT_DIR and a one-certificate SSL_CERT_FILE.
DIAG_SHM=()
if [[ -d /dev/shm && -w /dev/shm ]]; then
    SHM_RESULT=$(mktemp /dev/shm/assessor-bench.XXXXXX)
    DIAG_SHM=("env RESULT_PATH=$SHM_RESULT $ASSESSOR")
fi
hf diag-result "${FIXED_ENV[@]}" -- "env RESULT_PATH=$RESULT $ASSESSOR" "${DIAG_SHM[@]}" "env RESULT_PATH=- $ASSESSOR"
if [[ -n ${SHM_RESULT:-} ]]; then rm -f "$SHM_RESULT"; fi
mkdir -p "$WORK/empty-cert-dir"
ONE_CERT=$WORK/one-cert.pem
DIAG_TLS=("env SSL_CERT_DIR=$WORK/empty-cert-dir $ASSESSOR")
if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
    awk '{ print } /END CERTIFICATE/ { exit }' /etc/ssl/certs/ca-certificates.crt >"$ONE_CERT"
    DIAG_TLS+=("env SSL_CERT_DIR=$WORK/empty-cert-dir SSL_CERT_FILE=$ONE_CERT $ASSESSOR")
fi
hf diag-tls "${OPENAI_ENV[@]}" -- "env $ASSESSOR" "${DIAG_TLS[@]}"
check_result diag-tls '.status == "ok" and .verdict == "accept"'

# --- 3. binary sizes --------------------------------------------------------------
size_of() { stat -c %s "$1"; }
stripped() { if readelf -S "$1" 2>/dev/null | grep -q "\.symtab"; then echo "has .symtab"; else echo "stripped (no .symtab)"; fi; }
ASSESSOR_SIZE=$(size_of "$ASSESSOR")
RELAY_SIZE=$(size_of "$RELAY")

# --- 4. peak RSS -------------------------------------------------------------------
log "peak RSS ($RSS_RUNS runs each)"
RSS_FIXED=$(peak_rss_kib env "${FIXED_ENV[@]}" "$ASSESSOR")
RSS_RULES=$(peak_rss_kib env "${RULES_ENV[@]}" "$ASSESSOR")
RSS_OPENAI=$(peak_rss_kib env "${OPENAI_ENV[@]}" "$ASSESSOR")
# shellcheck disable=SC2086 # split on purpose, as hyperfine -N splits it
RSS_CP=$(peak_rss_kib $CP_CMD)
# shellcheck disable=SC2086 # split on purpose, as hyperfine -N splits it
RSS_CURL=$(peak_rss_kib $CURL_CMD)

# --- summary -------------------------------------------------------------------------
F=$OUT/fixed.json R=$OUT/fixed-rules.json O=$OUT/openai.json
FIXED_MS=$(median_ms "$F" 0) TRUE_MS=$(median_ms "$F" 1) CP_MS=$(median_ms "$F" 2)
RULES_MS=$(median_ms "$R" 0) RTRUE_MS=$(median_ms "$R" 1) RCP_MS=$(median_ms "$R" 2)
OPENAI_MS=$(median_ms "$O" 0) CURL_MS=$(median_ms "$O" 1)
OPENAI_RATIO=$(ratio "$OPENAI_MS" "$CURL_MS")
verdict_ms() { if le "$1" "$FIXED_TARGET_MS"; then echo pass; else echo FAIL; fi; }
verdict_ratio() { if le "$1" "$OPENAI_TARGET_RATIO"; then echo pass; else echo FAIL; fi; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB (%d bytes)", b / 1048576, b }'; }
kib_mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

{
    echo "## Assessor benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "- command: \`bash bench/run.sh\` (hyperfine -N, --warmup $WARMUP, --runs $RUNS; medians)"
    echo "- revision: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' + uncommitted changes')"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), dirty page cache $(awk '/^Dirty:/ { print $2 " kB" }' /proc/meminfo)"
    echo "- tools: $(hyperfine --version), $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(curl --version | head -n1 | cut -d' ' -f1-2)"
    echo "- profile: ${PROFILE#"$ROOT"/}; rules variant decided by: $RULES_DECIDED_BY"
    echo "- raw data: $OUT"
    echo
    echo "| figure | assessor median (min) | peer | peer median (min) | ratio of medians | target | result |"
    echo "| --- | ---: | --- | ---: | ---: | --- | --- |"
    echo "| fixed backend, start → result written | $(cell "$F" 0) | \`/bin/true\` | $(cell "$F" 1) | $(ratio "$FIXED_MS" "$TRUE_MS")× | ≤ ${FIXED_TARGET_MS} ms | $(verdict_ms "$FIXED_MS") |"
    echo "| | | \`cp profile result\` | $(cell "$F" 2) | $(ratio "$FIXED_MS" "$CP_MS")× | | |"
    echo "| fixed backend + ASSESSOR_RULES | $(cell "$R" 0) | \`/bin/true\` | $(cell "$R" 1) | $(ratio "$RULES_MS" "$RTRUE_MS")× | ≤ ${FIXED_TARGET_MS} ms | $(verdict_ms "$RULES_MS") |"
    echo "| | | \`cp profile result\` | $(cell "$R" 2) | $(ratio "$RULES_MS" "$RCP_MS")× | | |"
    echo "| openai backend, canned nginx endpoint | $(cell "$O" 0) | \`curl\` same body | $(cell "$O" 1) | ${OPENAI_RATIO}× | ≤ ${OPENAI_TARGET_RATIO}× curl | $(verdict_ratio "$OPENAI_RATIO") |"
    echo
    echo "| binary (release, strip = \"symbols\", lto = \"thin\") | size | |"
    echo "| --- | ---: | --- |"
    echo "| assessor | $(mib "$ASSESSOR_SIZE") | $(stripped "$ASSESSOR") |"
    echo "| relay | $(mib "$RELAY_SIZE") | $(stripped "$RELAY") |"
    echo
    echo "| peak RSS (max of $RSS_RUNS runs, /usr/bin/time) | assessor | peer |"
    echo "| --- | ---: | ---: |"
    echo "| fixed backend | $(kib_mib "$RSS_FIXED") | \`cp\`: $(kib_mib "$RSS_CP") |"
    echo "| fixed backend + rules | $(kib_mib "$RSS_RULES") | \`cp\`: $(kib_mib "$RSS_CP") |"
    echo "| openai backend, canned endpoint | $(kib_mib "$RSS_OPENAI") | \`curl\`: $(kib_mib "$RSS_CURL") |"
    echo
    echo "| breakdown (same-run variants, each via \`env\`) | median | Δ vs first row |"
    echo "| --- | ---: | ---: |"
    diag_rows() {
        local file=$1 base n i; shift
        base=$(median_ms "$file" 0)
        n=$(jq '.results | length' "$file")
        for ((i = 0; i < n; i++)); do
            local ms
            ms=$(median_ms "$file" "$i")
            echo "| $1 | $(fmt_ms "$ms") | $(awk -v a="$ms" -v b="$base" 'BEGIN { printf "%+.2f ms", a - b }') |"
            shift
        done
    }
    result_labels=("fixed, result on disk (write + 2 fsyncs + rename)")
    if ((${#DIAG_SHM[@]})); then result_labels+=("fixed, result on tmpfs /dev/shm (fsync is free)"); fi
    result_labels+=("fixed, RESULT_PATH=- (stdout, no file)")
    diag_rows "$OUT/diag-result.json" "${result_labels[@]}"
    tls_labels=("openai, default TLS roots (CA bundle + /etc/ssl/certs)" "openai, SSL_CERT_DIR empty (CA bundle only)")
    if ((${#DIAG_TLS[@]} > 1)); then tls_labels+=("openai, SSL_CERT_DIR empty + 1-cert SSL_CERT_FILE"); fi
    diag_rows "$OUT/diag-tls.json" "${tls_labels[@]}"
} | tee "$OUT/summary.md"

# BENCH_STRICT=1: exit 1 when a target is missed (the default only reports).
if [[ ${BENCH_STRICT:-0} == 1 ]] && grep -q '| FAIL |' "$OUT/summary.md"; then
    log "a target was missed"
    exit 1
fi
