#!/usr/bin/env bash
# bench/compare.sh: two builds of the pair, side by side in one hyperfine run
# per case, so a change (a refactor, a dependency bump) is judged as a ratio
# against the build before it, on the same machine at the same moment.
#
#   bash bench/compare.sh OLD_RELEASE_DIR NEW_RELEASE_DIR
#
# Each directory holds release `assessor` and `relay` binaries, e.g. the
# `target/release` of a worktree at the old commit and of this one:
#   git worktree add --detach ../old <commit> && (cd ../old && cargo build --release -p assessor -p relay)
#   cargo build --release -p assessor -p relay
#   bash bench/compare.sh ../old/target/release target/release
#
# Cases (all on 127.0.0.1 or local files, no model):
# 1. one profile, fixed backend, result to a file (start -> result written);
# 2. the same with the rules of bench/run.sh (rules run, then the backend);
# 3. a batch of BENCH_BATCH (2000) JSONL profiles, fixed backend, 16 jobs;
# 4. `relay` start -> exit over a directory of BENCH_RESULTS (1000) accepted
#    results delivered to a `file:` target (RELAY_EXPECT=N);
# 5. the stripped binary sizes.
# Prints a Markdown table: mean ± σ for each build and new/old.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OLD=$(cd "${1:?old release dir}" && pwd)
NEW=$(cd "${2:?new release dir}" && pwd)
RUNS=${BENCH_RUNS:-40}
BATCH=${BENCH_BATCH:-2000}
RESULTS=${BENCH_RESULTS:-1000}
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
unset RUST_LOG LOG_FORMAT CONFIG_PATH
for var in $(compgen -e); do
    case $var in LLM_*|ASSESSOR_*|RELAY_*|CAPTION_*|NOTIFIER_*|WEBHOOK_*|PROFILE_PATH|RESULT_PATH|RESULT_DIR|WATCH_DIR|CACHE_DIR) unset "$var" ;; esac
done

PROFILE=$ROOT/examples/samples/s01.json
RULES='{"price":{"max":425000},"location":["bristol"],"forbid":["shared ownership","retirement","\\bauction\\b"]}'
python3 bench/batch/make_profiles.py "$BATCH" "$WORK/batch.jsonl" 1 >/dev/null
mkdir -p "$WORK/results"
for i in $(seq -w 1 "$RESULTS"); do
    printf '{"id":"r%s","status":"ok","verdict":"accept","score":0.9,"reasons":["fits"]}\n' "$i" > "$WORK/results/r$i.json"
done

row() { # name json
    jq -r --arg name "$1" '
      def r2: . * 100 | round / 100;
      (.results[0].mean * 1000) as $o | (.results[1].mean * 1000) as $nw |
      "| \($name) | \($o | r2) ± \(.results[0].stddev * 1000 | r2) ms | \($nw | r2) ± \(.results[1].stddev * 1000 | r2) ms | \($nw / $o * 1000 | round / 1000) |"' "$2"
}

echo "| case | old | new | new/old |"
echo "|---|---|---|---|"
hf() { # name json args...
    local name=$1 json=$2; shift 2
    hyperfine -N --style none --warmup 3 --runs "$RUNS" --export-json "$json" "$@" >/dev/null 2>&1
    row "$name" "$json"
}
for build in OLD NEW; do
    dir=${!build}
    printf '#!/bin/sh\nexec env PROFILE_PATH=%s RESULT_PATH=%s/%s.json LLM_BACKEND=fixed %s/assessor\n' "$PROFILE" "$WORK" "$build" "$dir" > "$WORK/fixed-$build.sh"
    printf '#!/bin/sh\nexec env PROFILE_PATH=%s RESULT_PATH=%s/%s-r.json LLM_BACKEND=fixed ASSESSOR_RULES=%q %s/assessor\n' "$PROFILE" "$WORK" "$build" "$RULES" "$dir" > "$WORK/rules-$build.sh"
    printf '#!/bin/sh\nexec env PROFILE_PATH=%s/batch.jsonl RESULT_DIR=%s/out-%s LLM_BACKEND=fixed ASSESSOR_JOBS=16 RUST_LOG=warn %s/assessor\n' "$WORK" "$WORK" "$build" "$dir" > "$WORK/batch-$build.sh"
    printf '#!/bin/sh\nexec env WATCH_DIR=%s/results NOTIFIER_URL=file://%s/n-%s.jsonl RELAY_STATE_DIR=%s/state-%s RELAY_EXPECT=%s RUST_LOG=warn %s/relay\n' "$WORK" "$WORK" "$build" "$WORK" "$build" "$RESULTS" "$dir" > "$WORK/relay-$build.sh"
    chmod +x "$WORK"/*-"$build".sh
done
hf "assess, fixed backend" "$WORK/fixed.json" "$WORK/fixed-OLD.sh" "$WORK/fixed-NEW.sh"
hf "assess, rules + fixed" "$WORK/rules.json" "$WORK/rules-OLD.sh" "$WORK/rules-NEW.sh"
# Outputs of the previous run are removed untimed (--prepare), so neither
# build's time includes deleting thousands of files.
RUNS=$(( RUNS / 4 + 2 )) hf "batch of $BATCH, fixed, 16 jobs" "$WORK/batch.json" \
    --prepare "rm -rf $WORK/out-OLD $WORK/out-NEW" "$WORK/batch-OLD.sh" "$WORK/batch-NEW.sh"
RUNS=$(( RUNS / 4 + 2 )) hf "relay, $RESULTS results to file:" "$WORK/relay.json" \
    --prepare "rm -rf $WORK/state-OLD $WORK/state-NEW $WORK/n-OLD.jsonl $WORK/n-NEW.jsonl" "$WORK/relay-OLD.sh" "$WORK/relay-NEW.sh"
[ "$(wc -l < "$WORK/n-NEW.jsonl")" -eq "$RESULTS" ] || { echo "new relay delivered $(wc -l < "$WORK/n-NEW.jsonl") of $RESULTS" >&2; exit 1; }
[ "$(ls "$WORK/out-NEW" | wc -l)" -eq "$BATCH" ] || { echo "new batch wrote $(ls "$WORK/out-NEW" | wc -l) of $BATCH" >&2; exit 1; }
for bin in assessor relay; do
    o=$(stat -c %s "$OLD/$bin"); n=$(stat -c %s "$NEW/$bin")
    echo "| size of $bin | $o B | $n B | $(awk -v o="$o" -v n="$n" 'BEGIN{printf "%.3f", n/o}') |"
done
