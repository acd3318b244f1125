#!/usr/bin/env bash
# bench/llama-contention.sh: the in-process judge on a busy machine, and
# JSON mode against regex mode (issue 14, benchmarks a and b).
#
#   bash bench/llama-contention.sh OLD_ASSESSOR NEW_ASSESSOR
#
# Both binaries judge the same profile (BENCH_PROFILE, default the s01
# sample) with the demo model, LLM_THREADS=$BENCH_THREADS (default: unset,
# each binary's own default) and no response cache, in
# three conditions, interleaved round by round:
#   quiet    nothing else running (as far as this script can tell);
#   busy     two `while :; do :; done` busy loops beside it (a node shared
#            with two busy neighbours: a fair share is half the machine);
#   1 core   `taskset -c 0` (a CPU limit of one core; the assessor's
#            default LLM_THREADS follows the cgroup, taskset is what this
#            machine can do without one); with BENCH_THREADS=2, as a pod
#            whose thread setting exceeds its quota would run.
# and two modes: json (the default: verdict grammar) and regex
# (LLM_POSITIVE_RESPONSE_REGEX: no grammar, the unconstrained speed).
#
# Prints a Markdown table of medians: wall time per assessment, generation
# tokens/s and prompt tokens/s (from the result's `usage`), and the ratios
# busy/quiet and 1core/quiet of the wall time. Every result and log stays in
# $BENCH_OUT (default: a new temp dir).
#
# Figures: docs/BENCHMARKS.md, "Contention, grammar speed and OpenMP".
#
# Knobs: BENCH_RUNS (3 rounds), BENCH_THREADS, BENCH_PROFILE, BENCH_MODEL (a GGUF; default
# the demo model in .cache/models), BENCH_OUT.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OLD=${1:?usage: bench/llama-contention.sh OLD_ASSESSOR NEW_ASSESSOR}
NEW=${2:?usage: bench/llama-contention.sh OLD_ASSESSOR NEW_ASSESSOR}
RUNS=${BENCH_RUNS:-3}
THREADS=${BENCH_THREADS:-}
PROFILE=${BENCH_PROFILE:-$ROOT/examples/samples/s01.json}
MODEL=${BENCH_MODEL:-$ROOT/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
OUT=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
[[ -f $MODEL ]] || { echo "bench: no model at $MODEL (bash scripts/fetch-model.sh)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "bench: needs taskset (util-linux)" >&2; exit 1; }

BUSY=()
start_busy() {
    for _ in 1 2; do
        sh -c 'while :; do :; done' &
        BUSY+=($!)
    done
}
stop_busy() {
    for pid in "${BUSY[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BUSY[@]}"; do wait "$pid" 2>/dev/null || true; done
    BUSY=()
}
trap stop_busy EXIT

# run_one LABEL BIN CONDITION MODE ROUND -> appends one JSON line to all.jsonl
run_one() {
    local label=$1 bin=$2 condition=$3 mode=$4 round=$5
    local result=$OUT/$label-$condition-$mode-$round.json
    local prefix=()
    [[ $condition == 1core ]] && prefix=(taskset -c 0)
    local extra=()
    [[ $mode == regex ]] && extra=(LLM_POSITIVE_RESPONSE_REGEX='(?s).*\baccept\b.*')
    [[ $condition == busy ]] && start_busy
    local t0 t1
    t0=$(date +%s.%N)
    env -i PATH="$PATH" LOG_FORMAT=json LLM_BACKEND=llama LLM_MODEL_PATH="$MODEL" \
        ${THREADS:+LLM_THREADS=$THREADS} LLM_RESPONSE_CACHE=false LLM_SEED=7 \
        PROFILE_PATH="$PROFILE" RESULT_PATH="$result" "${extra[@]}" \
        "${prefix[@]}" "$bin" 2>"$result.log" || true
    t1=$(date +%s.%N)
    [[ $condition == busy ]] && stop_busy
    python3 - "$label" "$condition" "$mode" "$result" "$t0" "$t1" >>"$OUT/all.jsonl" <<'PY'
import json, sys
label, condition, mode, path, t0, t1 = sys.argv[1:7]
try:
    r = json.load(open(path))
except Exception:
    r = {}
u = r.get("usage") or {}
print(json.dumps({"label": label, "condition": condition, "mode": mode,
                  "wall_s": float(t1) - float(t0), "status": r.get("status"),
                  "verdict": r.get("verdict"), "completion_tokens": u.get("completion_tokens"),
                  "gen_tps": u.get("generation_tokens_per_second"),
                  "prompt_tps": u.get("prompt_tokens_per_second")}))
PY
}

: >"$OUT/all.jsonl"
for round in $(seq 1 "$RUNS"); do
    for condition in quiet busy 1core; do
        for mode in json regex; do
            for pair in "old:$OLD" "new:$NEW"; do
                echo "bench: round $round $condition $mode ${pair%%:*}" >&2
                run_one "${pair%%:*}" "${pair#*:}" "$condition" "$mode" "$round"
            done
        done
    done
done

python3 - "$OUT/all.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(label, condition, mode, key):
    v = [r[key] for r in rows if (r["label"], r["condition"], r["mode"]) == (label, condition, mode) and r[key] is not None]
    return statistics.median(v) if v else None
def f(x, d=2):
    return "–" if x is None else f"{x:.{d}f}"
print("| binary | mode | quiet s | busy s | 1 core s | busy/quiet | 1core/quiet | gen t/s quiet / busy / 1core | prompt t/s quiet |")
print("|---|---|---|---|---|---|---|---|---|")
for label in ("old", "new"):
    for mode in ("json", "regex"):
        q, b, c = (med(label, k, mode, "wall_s") for k in ("quiet", "busy", "1core"))
        g = [med(label, k, mode, "gen_tps") for k in ("quiet", "busy", "1core")]
        p = med(label, "quiet", mode, "prompt_tps")
        print(f"| {label} | {mode} | {f(q)} | {f(b)} | {f(c)} | {f(b/q if q and b else None)} | {f(c/q if q and c else None)} | "
              f"{' / '.join(f(x, 1) for x in g)} | {f(p, 1)} |")
bad = [r for r in rows if r["status"] != "ok"]
print(f"\nruns: {len(rows)}; not ok: {len(bad)}")
PY
echo "bench: raw data in $OUT" >&2
