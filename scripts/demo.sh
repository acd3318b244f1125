#!/usr/bin/env bash
# The main job, end to end, on embedded defaults: no LLM server needed.
#
# Does all set-up first (build dependencies for llama.cpp, the demo model,
# a release build), then starts the relay watching out/demo/, runs the
# assessor over every profile in examples/profiles/ with the example brief and
# rules (examples/config.json): the rules stage rejects what it can decide and
# the embedded model (SmolLM2-135M-Instruct, run in-process by llama.cpp)
# judges the rest. One result per profile lands in out/demo/; the relay
# delivers the accepted ones to out/notifications.jsonl and exits once every
# result is handled; a summary table is printed at the end. A second run
# reuses the fetched model and the build.
#
# The demo model is tiny (135M parameters): its judgement is weak. Use a
# bigger GGUF with LLM_MODEL_PATH=/path/model.gguf, or a server with
#   LLM_BACKEND=openai LLM_BASE_URL=http://localhost:11434/v1 LLM_MODEL=llama3.2 scripts/demo.sh
# DEMO_PROFILE=dev builds the debug profile instead of release (CI uses it to
# skip a second llama.cpp build).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "demo: cargo is not installed (https://rustup.rs)" >&2
  exit 2
fi

bash scripts/install-build-deps.sh
export LLM_BACKEND="${LLM_BACKEND:-llama}"
if [ "$LLM_BACKEND" = llama ] && [ -z "${LLM_MODEL_PATH:-}" ]; then
  LLM_MODEL_PATH=$(bash scripts/fetch-model.sh)
  export LLM_MODEL_PATH
fi

profile="${DEMO_PROFILE:-release}"
cargo build --profile "$profile" --locked -p assessor -p relay
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
assessor="target/$dir/assessor"
relay="target/$dir/relay"
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
