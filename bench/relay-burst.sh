#!/usr/bin/env bash
# bench/relay-burst.sh: a burst of results renamed into WATCH_DIR at once
# (issue 12 item 1), for this tree's relay and, in the same run, for the
# relay of another commit (BENCH_OLD_RELAY, e.g. one built in a
# `git worktree add --detach /tmp/relay-old main`).
#
#   BENCH_OLD_RELAY=/tmp/relay-old/target/release/relay bash bench/relay-burst.sh
#
# Per binary, two runs over BENCH_BURST_COUNT (20,000) results staged on the
# same filesystem and renamed into the watched directory as fast as Python
# can, with a `file:` target:
# 1. RELAY_EXPECT=N: time from the first rename to the relay's exit (every
#    result delivered), results delivered, CPU seconds (user+sys) and peak
#    RSS from /usr/bin/time, and per-result latency (rename to the relay's
#    "delivered" log line) p50/p99;
# 2. sidecar mode (RELAY_EXPECT=0, RELAY_DRAIN_TIMEOUT=5s): SIGTERM once
#    BENCH_BURST_TERM_AT lines (2,000) are delivered, or after 10 s; the time
#    from the signal to the exit.
# BENCH_NEW_LABEL names the first binary in the table (default new).
# A run is cut at BENCH_BURST_TIMEOUT_S (120) s: the figures then say how far
# it got. Prints a Markdown table; logs stay in $BENCH_OUT.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
COUNT=${BENCH_BURST_COUNT:-20000}
TERM_AT=${BENCH_BURST_TERM_AT:-2000}
TIMEOUT_S=${BENCH_BURST_TIMEOUT_S:-120}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/relay-burst.XXXXXX)}
NEW=${BENCH_NEW_RELAY:-$ROOT/target/release/relay}
OLD=${BENCH_OLD_RELAY:-}

log() { printf 'bench: %s\n' "$*" >&2; }
[[ -x /usr/bin/time ]] || { log "needs /usr/bin/time (apt-get install time)"; exit 1; }
if [[ -z ${BENCH_SKIP_BUILD:-} && -z ${BENCH_NEW_RELAY:-} ]]; then
    cargo build --release -p relay >&2
fi

# run_one LABEL BIN MODE -> prints one JSON line of figures
run_one() {
    local label=$1 bin=$2 mode=$3
    local dir=$OUT/$label-$mode
    rm -rf "$dir"
    mkdir -p "$dir/results" "$dir/staging"
    python3 - "$dir/staging" "$COUNT" <<'PY'
import json, sys, os
staging, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    result = {"schema_version": 1, "id": f"burst-{i}", "verdict": "accept", "score": 0.9,
              "reasons": ["bench"], "decided_by": "llm"}
    with open(os.path.join(staging, f"r{i:05}.json"), "w") as f:
        json.dump(result, f)
PY
    local expect=$COUNT
    [[ $mode == term ]] && expect=0
    env -i PATH="$PATH" LOG_FORMAT=json WATCH_DIR="$dir/results" \
        NOTIFIER_URL="file://$dir/out.jsonl" RELAY_EXPECT=$expect \
        RELAY_WAIT_TIMEOUT=${TIMEOUT_S}s RELAY_DRAIN_TIMEOUT=5s \
        /usr/bin/time -f '{"user": %U, "sys": %S, "max_rss_kib": %M, "code": %x}' -o "$dir/time.json" \
        "$bin" 2>"$dir/relay.log" &
    local pid=$!
    for _ in $(seq 1 200); do
        grep -q 'watching' "$dir/relay.log" 2>/dev/null && break
        sleep 0.05
    done
    python3 - "$dir" "$COUNT" "$pid" "$mode" "$TERM_AT" "$TIMEOUT_S" <<'PY' >"$dir/figures.json"
import json, os, signal, sys, time
d, n, pid, mode, term_at, timeout_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
staging, results, out = f"{d}/staging", f"{d}/results", f"{d}/out.jsonl"
# The relay runs under /usr/bin/time: signal the relay, time's child.
children = open(f"/proc/{pid}/task/{pid}/children").read().split()
relay = int(children[0]) if children else pid
renamed = {}
t0 = time.time()
for i in range(n):
    name = f"r{i:05}.json"
    os.rename(f"{staging}/{name}", f"{results}/{name}")
    renamed[name] = time.time()
rename_s = time.time() - t0
def lines():
    try:
        with open(out, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0
def alive():
    try:
        os.kill(relay, 0)
        st = open(f"/proc/{relay}/stat").read().split()[2]
        return st != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False
term_latency = None
deadline = t0 + timeout_s
progress = []
next_sample = t0 + 1
while alive() and time.time() < deadline:
    now = time.time()
    if now >= next_sample:
        progress.append(lines())
        next_sample += 1
    if mode == "term" and (lines() >= term_at or now - t0 > 10):
        t_term = time.time()
        os.kill(relay, signal.SIGTERM)
        while alive() and time.time() < t_term + 60:
            time.sleep(0.005)
        term_latency = time.time() - t_term
        break
    time.sleep(0.01)
elapsed = time.time() - t0
cut = alive()
if cut:
    os.kill(relay, signal.SIGKILL)
# Per-result latency: rename to the relay's "delivered" log line.
lat = []
with open(f"{d}/relay.log", errors="replace") as f:
    for line in f:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        fields = rec.get("fields", rec)
        if fields.get("message") != "delivered":
            continue
        name = fields.get("file")
        ts = rec.get("timestamp")
        if name in renamed and ts:
            from datetime import datetime
            t = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
            lat.append(t - renamed[name])
lat.sort()
pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None
print(json.dumps({"rename_s": round(rename_s, 2), "elapsed_s": round(elapsed, 2), "delivered": lines(),
                  "cut_at_timeout": cut, "term_latency_s": None if term_latency is None else round(term_latency, 2),
                  "p50_ms": pct(0.5), "p99_ms": pct(0.99), "progress_per_s": progress[:30]}))
PY
    wait "$pid" 2>/dev/null || true
    python3 - "$label" "$mode" "$dir/figures.json" "$dir/time.json" <<'PY'
import json, sys
label, mode, figures, timing = sys.argv[1:5]
f = json.load(open(figures))
try:
    t = json.loads(open(timing).read().strip().splitlines()[-1])
except Exception:
    t = {}
f.update({"label": label, "mode": mode, "cpu_s": round(t.get("user", 0) + t.get("sys", 0), 2),
          "max_rss_kib": t.get("max_rss_kib"), "code": t.get("code")})
print(json.dumps(f))
PY
    rm -rf "$dir/staging" "$dir/results"
}

mkdir -p "$OUT"
: >"$OUT/all.jsonl"
for pair in "${BENCH_NEW_LABEL:-new}:$NEW" ${OLD:+"old:$OLD"}; do
    label=${pair%%:*}
    bin=${pair#*:}
    for mode in expect term; do
        log "$label $mode ($COUNT results)"
        run_one "$label" "$bin" "$mode" | tee -a "$OUT/all.jsonl" >&2
    done
done

python3 - "$OUT/all.jsonl" "$COUNT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n = sys.argv[2]
print(f"| relay | run | delivered / {n} | time (s) | CPU (s) | peak RSS (KiB) | p50 / p99 (ms) | SIGTERM latency (s) | exit |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    t = f"{r['elapsed_s']}" + (" (cut)" if r["cut_at_timeout"] else "")
    print(f"| {r['label']} | {r['mode']} | {r['delivered']} | {t} | {r['cpu_s']} | {r['max_rss_kib']} | "
          f"{r['p50_ms']} / {r['p99_ms']} | {r['term_latency_s'] if r['term_latency_s'] is not None else '-'} | {r['code']} |")
PY
log "logs in $OUT"
