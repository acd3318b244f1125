#!/usr/bin/env bash
# Judgement on the repository's labelled samples (examples/samples), with
# the demo model, greedy, in one run: the llama backend and the openai
# backend against llama-cpp-python's server (same GGUF), each with the
# example rules' facts and without them, so the facts stage's gain is
# visible. Prints one row per run: accuracy, what decided, and every
# reply_invalid / reply_truncated result (the targets: none).
#
#   bash bench/judgement.sh [ASSESSOR_BIN]
#
# Needs: the demo model (scripts/fetch-model.sh) and, for the openai rows,
# `pip install 'llama-cpp-python[server]'` (skipped with a note without it).
# llama-cpp-python's server is started through bench/llama_cpp_python_server.py,
# which turns off ggml's extra buffer types: on this VM the AMX repacking
# crashes the server on its first inference.
set -euo pipefail
cd "$(dirname "$0")/.."
assessor=${1:-target/release/assessor}
model=$(bash scripts/fetch-model.sh)
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill -- -"$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/in"
cp examples/samples/s*.json "$work/in/"
python3 - "$work" <<'PY'
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
root = pathlib.Path.cwd()
rules = json.loads((root / "examples/rules.json").read_text())
config = json.loads((root / "examples/config.json").read_text())
config["ASSESSOR_CRITERIA_FILE"] = str(root / "examples/brief.md")
for name, with_facts in (("facts", True), ("nofacts", False)):
    r = dict(rules)
    if not with_facts:
        r.pop("facts", None)
    (work / f"rules-{name}.json").write_text(json.dumps(r))
    c = dict(config, ASSESSOR_RULES="@" + str(work / f"rules-{name}.json"))
    (work / f"config-{name}.json").write_text(json.dumps(c))
PY

run() { # name backend-envs...
  local name=$1; shift
  local facts=$1; shift
  env "$@" CONFIG_PATH="$work/config-$facts.json" LLM_SEED=7 LOG_FORMAT=plain RUST_LOG=warn \
    PROFILE_PATH="$work/in" RESULT_DIR="$work/$name" \
    "$assessor" eval --labels examples/samples/labels.json --result-dir "$work/$name" \
    > "$work/$name.md" 2> "$work/$name.err" || true
  python3 - "$work/$name" "$name" <<'PY'
import json, pathlib, sys, collections
labels = json.loads(pathlib.Path("examples/samples/labels.json").read_text())
right = total = 0
by = collections.Counter()
sources = collections.Counter()
bad = []
for path in sorted(pathlib.Path(sys.argv[1]).glob("s*.json")):
    r = json.loads(path.read_text())
    total += 1
    kind = (r.get("error") or {}).get("kind")
    if kind:
        bad.append(f"{path.stem}:{kind}")
        continue
    by[r.get("decided_by")] += 1
    if r.get("score_source"):
        sources[r["score_source"]] += 1
    right += r.get("verdict") == labels.get(path.stem)
wrong = [p.stem for p in sorted(pathlib.Path(sys.argv[1]).glob("s*.json"))
         if json.loads(p.read_text()).get("verdict") != labels.get(p.stem)]
print(f"| {sys.argv[2]} | {right}/{total} | {', '.join(f'{k} {v}' for k, v in sorted(by.items()))} | {', '.join(f'{k} {v}' for k, v in sorted(sources.items())) or '-'} | {', '.join(bad) or 'none'} | {', '.join(wrong) or '-'} |")
PY
}

echo "| run | right | decided by | score source | reply_invalid / truncated / other errors | wrong |"
echo "|---|---:|---|---|---|---|"
run llama-facts facts LLM_BACKEND=llama LLM_MODEL_PATH="$model"
run llama-nofacts nofacts LLM_BACKEND=llama LLM_MODEL_PATH="$model"

if python3 -c "import llama_cpp.server" 2>/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  setsid python3 bench/llama_cpp_python_server.py --model "$model" --host 127.0.0.1 --port "$port" \
    --n_ctx 2048 --logits_all true > "$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1 && break
    sleep 0.5
  done
  server=(LLM_BACKEND=openai LLM_BASE_URL="http://127.0.0.1:$port/v1" LLM_MODEL=smollm2 ASSESSOR_JOBS=2)
  run openai-lcp-facts facts "${server[@]}"
  run openai-lcp-nofacts nofacts "${server[@]}"
else
  echo "(llama-cpp-python is not installed: pip install 'llama-cpp-python[server]' for the openai rows)"
fi
