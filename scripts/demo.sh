#!/usr/bin/env bash
# The main job, end to end, on embedded defaults: no LLM server needed.
#
# Builds the release binaries, starts the relay watching out/demo/, then runs
# the assessor over every profile in examples/profiles/ with the example brief
# and rules (examples/config.json), writing one result per profile into
# out/demo/. The relay delivers the accepted ones to a local sink
# (out/notifications.jsonl) and exits once every result is handled; a summary
# table is printed at the end.
#
# The judge here is the deterministic rules stage followed by the `fixed`
# backend (it accepts whatever the rules let through), so the run needs no
# model and no network. Point it at a real model with, for example:
#   LLM_BACKEND=openai LLM_BASE_URL=http://localhost:11434/v1 LLM_MODEL=llama3.2 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "demo: cargo is not installed (https://rustup.rs)" >&2
  exit 2
fi

cargo build --release --locked -p assessor -p relay
assessor=target/release/assessor
relay=target/release/relay
out=out/demo
sink="$PWD/out/notifications.jsonl"
rm -rf "$out" "$sink"
mkdir -p "$out"
profiles=(examples/profiles/*.json)

# The relay first, as the sidecar starts before the assessor in a pod.
WATCH_DIR="$out" RELAY_EXPECT="${#profiles[@]}" RELAY_WAIT_TIMEOUT=5m \
  NOTIFIER_URL="file://$sink" LOG_FORMAT=plain RUST_LOG="${RUST_LOG:-warn}" \
  "$relay" &
relay_pid=$!
trap 'kill "$relay_pid" 2>/dev/null || true' EXIT

export LLM_BACKEND="${LLM_BACKEND:-fixed}"
export LOG_FORMAT="${LOG_FORMAT:-plain}"
export RUST_LOG="${RUST_LOG:-warn}"
failed=0
for profile in "${profiles[@]}"; do
  name=$(basename "$profile")
  code=0
  CONFIG_PATH=examples/config.json PROFILE_PATH="$profile" RESULT_PATH="$out/$name" \
    "$assessor" || code=$?
  if [ "$code" -ne 0 ]; then
    echo "demo: $profile: assessor exited with $code" >&2
    failed=$((failed + 1))
  fi
done

relay_code=0
wait "$relay_pid" || relay_code=$?
trap - EXIT
if [ "$relay_code" -ne 0 ]; then
  echo "demo: relay exited with $relay_code" >&2
  failed=$((failed + 1))
fi

python3 - "$out" "$sink" <<'PY'
import json, pathlib, sys
rows = []
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    r = json.loads(path.read_text())
    reason = (r.get("reasons") or [""])[0] if r.get("status") == "ok" else (r.get("error") or {}).get("kind", "")
    score = r.get("score")
    rows.append((path.stem, r.get("verdict") or "-", "-" if score is None else f"{score:.2f}",
                 r.get("decided_by") or "-", f'{r.get("timings_ms", {}).get("total", 0)} ms', reason[:70]))
head = ("profile", "verdict", "score", "decided_by", "time", "first reason")
widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
print(line(head)); print(line(["-" * w for w in widths]))
for row in rows: print(line(row))
accepted = sum(1 for r in rows if r[1] == "accept")
sink = pathlib.Path(sys.argv[2])
delivered = len(sink.read_text().splitlines()) if sink.exists() else 0
print(f"\n{len(rows)} profiles, {accepted} accepted, {delivered} delivered by the relay to {sink}")
print(f"results in {sys.argv[1]}/")
PY
exit "$failed"
