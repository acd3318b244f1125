#!/usr/bin/env bash
# bench/hostile-assessor.sh: the hostile cases of issue 13, run against the
# REAL assessor binary (not the test harness), one Markdown table row each.
#
#   bash bench/hostile-assessor.sh [path/to/assessor]   # default: target/release/assessor
#
# Build it first, e.g. `cargo build --release -p assessor --no-default-features`
# (no case needs the llama backend). Needs bash, coreutils (timeout, mkfifo),
# util-linux (prlimit), procps (pgrep, ps), python3 and jq. Takes well under
# a minute on an idle machine.
#
# Cases: files that are not regular files (FIFOs, /dev/zero) wherever a file
# is named (profile, CONFIG_PATH, *_FILE secret, ASSESSOR_RULES=@path,
# ASSESSOR_CRITERIA_FILE, a JSONL input, a local image with captions on); a
# 200-line batch streamed through a FIFO; command judges that leave a
# grandchild (COMMAND_TIMEOUT, SIGTERM, a batch stopped mid-way); a 429 with
# `Retry-After: u64::MAX`; a 245-character result name; a key in
# LLM_BASE_URL's query; a 1,000-line batch with a malformed line and an
# all-malformed batch; 401/403/404 refusals; a batch resumed after a brief
# change.
#
# Every run is guarded by `timeout` (HOSTILE_GUARD seconds, default 20) and
# `prlimit --as` (HOSTILE_MEM_BYTES, default 1 GiB), so a regression shows as
# exit 124/137 or a failed allocation in the table, never as a hung or
# swapping machine. Judge servers are a small python3 http.server fake of the
# OpenAI API on 127.0.0.1 (port 0; the port is printed on stderr); the
# `fixed` and `command` backends are used where no server is needed.
# Everything lives in one temp dir, removed at exit with the fake server,
# FIFO writers and any leftover judge processes this script started.
#
# HOSTILE_KEEP=1 keeps the temp dir (every case's stdout, stderr and results).
#
# Output: the table on stdout (progress on stderr). The "vs docs" column
# compares each run with README.md / docs/contract.md; the script exits 1
# when any row differs, 0 otherwise. The figures are quoted in the issue 13
# closing note.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/release/assessor}
[[ $BIN = /* ]] || BIN=$PWD/$BIN
if [[ ! -x $BIN ]]; then
    echo "hostile: no assessor binary at $BIN (build: cargo build --release -p assessor --no-default-features)" >&2
    exit 2
fi
GUARD=${HOSTILE_GUARD:-20}
MEM_BYTES=${HOSTILE_MEM_BYTES:-1073741824}
for tool in timeout prlimit mkfifo pgrep ps python3 jq; do
    command -v "$tool" >/dev/null 2>&1 || { echo "hostile: $tool is required" >&2; exit 2; }
done

log() { printf 'hostile: %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hostile13.XXXXXX")
BG_PIDS=()

# Ends what this script started: the fake server, FIFO writers, and any
# judge process recorded under $WORK that is still there (a regression).
cleanup() {
    local pid f
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for f in "$WORK"/*/pids/* "$WORK"/*/pgid.*; do
        [[ -f $f ]] || continue
        pid=$(<"$f")
        [[ $pid =~ ^[0-9]+$ ]] || continue
        # the judge's process group (a pgid file), or one recorded pid;
        # only processes whose command line names sleep or a judge script
        for pid in $(if [[ $f == */pgid.* ]]; then pgrep -g "$pid"; else echo "$pid"; fi); do
            grep -qaE 'sleep|judge.sh' "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        done
    done
    wait 2>/dev/null
    if [[ ${HOSTILE_KEEP:-} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the fake OpenAI-compatible server --------------------------------------
# The first path segment after /m/ chooses the answer; the counter is per
# whole segment, so each case gets its own (e.g. /m/401-c7/v1):
#   ok*     a chat completion {"verdict":"accept",...}
#   429huge 429 with Retry-After: 18446744073709551615
#   <NNN>*  HTTP NNN with an OpenAI error body
#   v1only* 404 "404 page not found" unless the path is .../v1/chat/completions
# GET /count?m=SEG -> requests made; GET /last?m=SEG -> last path?query.
cat >"$WORK/fake_openai.py" <<'PY'
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

lock = threading.Lock()
counts, last = {}, {}
CONTENT = json.dumps({"verdict": "accept", "score": 0.9, "reasons": ["fake server"]})

def completion():
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": CONTENT},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}}

def error(message, kind):
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, code, body, headers=()):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        seg = parse_qs(url.query).get("m", [""])[0]
        with lock:
            if url.path == "/count":
                return self.reply(200, str(counts.get(seg, 0)))
            if url.path == "/last":
                return self.reply(200, last.get(seg, ""))
        self.reply(404, "404 page not found")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        url = urlsplit(self.path)
        parts = url.path.split("/")
        seg = parts[2] if len(parts) > 2 and parts[1] == "m" else "ok"
        with lock:
            counts[seg] = counts.get(seg, 0) + 1
            last[seg] = self.path
        kind = seg.split("-")[0]
        if kind == "ok":
            self.reply(200, completion())
        elif kind == "429huge":
            self.reply(429, error("Rate limit reached", "rate_limit_error"),
                       [("Retry-After", "18446744073709551615")])
        elif kind == "v1only":
            if url.path.endswith("/v1/chat/completions"):
                self.reply(200, completion())
            else:
                self.reply(404, "404 page not found")
        elif kind.isdigit():
            status = int(kind)
            message = {401: "Incorrect API key provided.", 403: "Forbidden.",
                       404: "The model `test-model` does not exist",
                       500: "the model is overloaded"}.get(status, "error")
            self.reply(status, error(message, "invalid_request_error"))
        else:
            self.reply(400, error("unknown mode " + seg, "invalid_request_error"))

server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
PY
python3 "$WORK/fake_openai.py" 0 >"$WORK/server.port" 2>"$WORK/server.err" &
BG_PIDS+=($!)
for _ in $(seq 100); do
    [[ -s $WORK/server.port ]] && break
    sleep 0.05
done
PORT=$(head -n1 "$WORK/server.port")
[[ $PORT =~ ^[0-9]+$ ]] || { log "the fake server did not start: $(cat "$WORK/server.err")"; exit 1; }
SERVER=http://127.0.0.1:$PORT
log "fake OpenAI server on 127.0.0.1:$PORT"
# GET from the fake server, bypassing any proxy of the environment.
server_get() { python3 -c 'import sys,urllib.request as u;print(u.build_opener(u.ProxyHandler({})).open(sys.argv[1]).read().decode())' "$SERVER/$1"; }
server_count() { server_get "count?m=$1"; }
server_last() { server_get "last?m=$1"; }

# --- running the assessor ----------------------------------------------------
# The assessor's command line, guarded: a clean environment (plus the
# case's VAR=value words), `timeout`, and `prlimit --as`.
guarded() {
    env -i PATH="$PATH" HOME="$WORK" LOG_FORMAT=plain "$@" \
        timeout -k 2 "$GUARD" prlimit --as="$MEM_BYTES" -- "$BIN"
}

# run DIR VAR=value...: runs it in DIR to the end; sets CODE and MS;
# stdout and stderr land in DIR/stdout and DIR/stderr.
run() {
    local dir=$1 t0
    shift
    t0=$(now_ms)
    (cd "$dir" && guarded "$@") >"$dir/stdout" 2>"$dir/stderr" </dev/null
    CODE=$?
    MS=$(($(now_ms) - t0))
}

# spawn DIR VAR=value...: starts it in the background; sets TPID (timeout's
# pid) and T0. APID (the assessor's own pid) is found by find_assessor.
spawn() {
    local dir=$1
    shift
    T0=$(now_ms)
    (cd "$dir" && exec env -i PATH="$PATH" HOME="$WORK" LOG_FORMAT=plain "$@" \
        timeout -k 2 "$GUARD" prlimit --as="$MEM_BYTES" -- "$BIN") \
        >"$dir/stdout" 2>"$dir/stderr" </dev/null &
    TPID=$!
}
find_assessor() {
    local i
    APID=
    for i in $(seq 200); do
        APID=$(pgrep -P "$TPID" | head -n1)
        [[ -n $APID && $(readlink "/proc/$APID/exe" 2>/dev/null) == "$BIN" ]] && return 0
        sleep 0.02
    done
    return 1
}

# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms.
wait_for() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    until "$@"; do
        (($(now_ms) > deadline)) && return 1
        sleep 0.05
    done
}

# Processes of process group $1 still running (zombies excluded): "pid:comm ...".
group_alive() {
    local pid stat out=
    for pid in $(pgrep -g "$1" 2>/dev/null); do
        stat=$(ps -o stat= -p "$pid" 2>/dev/null) || continue
        [[ $stat == Z* ]] && continue
        out+="$pid:$(ps -o comm= -p "$pid") "
    done
    printf '%s' "$out"
}
# Recorded pids (files under DIR/pids) still running (zombies excluded).
pids_alive() {
    local f pid out=
    for f in "$1"/pids/*; do
        [[ -f $f && $f != *.tmp ]] || continue
        pid=$(<"$f")
        [[ -r /proc/$pid/stat ]] || continue
        [[ $(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1) == [ZX] ]] && continue
        out+="$pid "
    done
    printf '%s' "$out"
}

# A result's field (jq filter), or "-" when there is no result.
rj() { [[ -f $1 ]] && jq -r "$2" "$1" 2>/dev/null || echo "-"; }
# The first stderr line matching an extended regex, without the log prefix.
err_line() {
    grep -E -m1 -- "$2" "$1/stderr" 2>/dev/null | sed -E 's/^.*(ERROR|WARN|INFO) [^ ]*: //' | cut -c1-"${3:-160}"
}
count_results() { find "$1" -maxdepth 1 -name '*.json' ! -name '.*' 2>/dev/null | wc -l; }

simple_profile() { # id text
    printf '{"text":"%s","metadata":{"id":"%s","price":"£300,000","location":"Redland, Bristol","summary":"2 bedroom flat for sale"}}' "$2" "$1"
}

# --- the table ---------------------------------------------------------------
ROWS=()
MISMATCHES=()
md() { printf '%s' "$1" | tr '\n' ' ' | sed -e 's/|/\\|/g'; }
# row CASE SETUP EXPECTED_CODE OBSERVATION [PROBLEM]: uses CODE and MS.
row() {
    local verdict=ok
    if [[ $CODE != "$3" ]]; then
        verdict="MISMATCH: exit $CODE, docs say $3"
    fi
    if [[ -n ${5-} ]]; then
        [[ $verdict == ok ]] && verdict="MISMATCH: $5" || verdict+="; $5"
    fi
    [[ $verdict == ok ]] || MISMATCHES+=("$1: $verdict")
    ROWS+=("| $(md "$1") | $(md "$2") | $CODE | $MS | $(md "$4") | $(md "$verdict") |")
    log "$1: exit $CODE in $MS ms ($verdict)"
}
newdir() { mkdir -p "$WORK/$1" && echo "$WORK/$1"; }

# === 1. files that are not regular files =====================================
D=$(newdir files)
mkfifo "$D/pipe.json"
simple_profile f1 "A flat with a garden." >"$D/profile.json"
HOSTILE=("$D/pipe.json" /dev/zero)
label() { [[ $1 == /dev/zero ]] && echo /dev/zero || echo FIFO; }

for h in "${HOSTILE[@]}"; do
    rm -f "$D/result.json"
    run "$D" PROFILE_PATH="$h" RESULT_PATH="$D/result.json" LLM_BACKEND=fixed
    row "1 PROFILE_PATH = $(label "$h")" "fixed backend" 3 \
        "result: $(rj "$D/result.json" .error.kind): \"$(rj "$D/result.json" .error.message | sed "s#$D/##")\"" \
        "$( ((MS > 5000)) && echo "took over 5 s")"
done

for spec in CONFIG_PATH= LLM_API_KEY_FILE= ASSESSOR_RULES=@ ASSESSOR_CRITERIA_FILE=; do
    var=${spec%%=*}
    for h in "${HOSTILE[@]}"; do
        rm -f "$D/result.json"
        run "$D" PROFILE_PATH="$D/profile.json" RESULT_PATH="$D/result.json" LLM_BACKEND=fixed "$spec$h"
        says=$(grep -oE -m1 "is a [^,]*, not a regular file" "$D/stderr")
        problem=
        grep -q "$var" "$D/stderr" || problem="stderr does not name $var"
        [[ -f $D/result.json ]] && problem+="${problem:+; }a result was written"
        ((MS > 5000)) && problem+="${problem:+; }took over 5 s"
        row "1 $spec$(label "$h")" "fixed backend, valid profile" 2 \
            "stderr names $var: \"${says:-?}\"; result: $([[ -f $D/result.json ]] && echo written || echo none)" "$problem"
    done
done

# A JSONL batch input that is /dev/zero (through a link named *.jsonl).
ln -s /dev/zero "$D/zero.jsonl"
run "$D" PROFILE_PATH="$D/zero.jsonl" RESULT_DIR="$D/zero-results" LLM_BACKEND=fixed
row "1 batch PROFILE_PATH = link to /dev/zero (.jsonl)" "fixed backend" 3 \
    "stderr: \"$(grep -oE -m1 "is a character device; [^\"]*" "$D/stderr" | cut -c1-100)\""

# A local image that is a FIFO, captions on (vision and judge: the fake server).
mkfifo "$D/pipe.png"
printf '{"text":"a flat with a garden","images":["pipe.png"],"metadata":{"id":"fifo-image"}}' >"$D/image-profile.json"
rm -f "$D/result.json"
run "$D" PROFILE_PATH="$D/image-profile.json" RESULT_PATH="$D/result.json" \
    LLM_BACKEND=openai LLM_BASE_URL="$SERVER/m/ok-c1j/v1" LLM_MODEL=test-model LLM_API_KEY=sk-test \
    CAPTION_BACKEND=openai CAPTION_BASE_URL="$SERVER/m/ok-c1v/v1" CAPTION_MODEL=vision-test
kind=$(rj "$D/result.json" '.captions[0].error.kind')
problem=
[[ $kind == image_unreadable ]] || problem="captions[0].error.kind is $kind"
[[ $(server_count ok-c1v) == 0 ]] || problem+="${problem:+; }the vision server was asked"
row "1 local image = FIFO, captions on" "CAPTION_BACKEND=openai, images: [\"pipe.png\"]" 0 \
    "status $(rj "$D/result.json" .status) $(rj "$D/result.json" .verdict); captions[0].error: $kind \"$(rj "$D/result.json" '.captions[0].error.message' | sed "s#$D/##" | cut -c1-80)\"; requests: judge $(server_count ok-c1j), vision $(server_count ok-c1v)" \
    "$problem"

# === 2. a 200-line batch streamed through a FIFO ===============================
D=$(newdir fifo-batch)
mkfifo "$D/input.jsonl"
(
    exec >"$D/input.jsonl"
    for i in $(seq -f '%03g' 0 199); do
        simple_profile "p$i" "a flat with a garden"
        echo
    done
) &
WRITER=$!
BG_PIDS+=("$WRITER")
run "$D" PROFILE_PATH="$D/input.jsonl" RESULT_DIR="$D/results" LLM_BACKEND=fixed
if kill -0 "$WRITER" 2>/dev/null; then
    kill "$WRITER" 2>/dev/null
    writer="still blocked, killed"
else
    wait "$WRITER"
    writer="exit $?"
fi
n=$(count_results "$D/results")
row "2 batch from a FIFO .jsonl, 200 lines" "writer process -> mkfifo input.jsonl; fixed backend" 0 \
    "$n results written; writer $writer; summary: $(grep -m1 '| accepted |' "$D/stderr")" \
    "$([[ $n == 200 ]] || echo "$n of 200 results")"

# === 3. command judges that leave a grandchild =================================
grandchild_judge() { # DIR: judge.sh records its pgid and pids, then never answers
    mkdir -p "$1/pids"
    cat >"$1/judge.sh" <<'SH'
#!/bin/sh
here=$(dirname "$0")
cat >/dev/null
ps -o pgid= -p $$ | tr -d ' ' > "$here/pgid.$$"
echo $$ > "$here/pids/$$.tmp" && mv "$here/pids/$$.tmp" "$here/pids/$$"
sleep 300 &
echo $! > "$here/pids/$$-bg.tmp" && mv "$here/pids/$$-bg.tmp" "$here/pids/$$-bg"
sleep 300
SH
    chmod +x "$1/judge.sh"
}
started_judges() { find "$1/pids" -name '*-bg' 2>/dev/null | wc -l; }
has_judges() { (($(started_judges "$1") >= $2)); }
# Survivors 1 s after the assessor exited: every judge's process group
# (pgrep -g) and every recorded pid.
survivors() {
    local f left=
    sleep 1
    for f in "$1"/pgid.*; do
        [[ -f $f ]] && left+=$(group_alive "$(<"$f")")
    done
    left+=$(pids_alive "$1")
    echo "${left:-none}"
}

# 3a: COMMAND_TIMEOUT=1s
D=$(newdir cmd-timeout)
grandchild_judge "$D"
simple_profile sig1 "A flat." >"$D/p.json"
run "$D" PROFILE_PATH="$D/p.json" RESULT_PATH="$D/result.json" LLM_BACKEND=command \
    ASSESSOR_COMMAND="'$D/judge.sh'" COMMAND_TIMEOUT=1s
left=$(survivors "$D")
row "3a command judge with a grandchild, COMMAND_TIMEOUT=1s" \
    "judge.sh: sleep 300 & sleep 300" 4 \
    "result: $(rj "$D/result.json" .error.kind) \"$(rj "$D/result.json" .error.message | sed "s#$D/##")\"; group $(cat "$D"/pgid.* 2>/dev/null) alive 1 s later (pgrep -g): $left" \
    "$([[ $left == none ]] || echo "survivors: $left")"

# 3b: SIGTERM to a single assessment while its command runs
D=$(newdir cmd-sigterm)
grandchild_judge "$D"
simple_profile sig2 "A flat." >"$D/p.json"
spawn "$D" PROFILE_PATH="$D/p.json" RESULT_PATH="$D/result.json" LLM_BACKEND=command \
    ASSESSOR_COMMAND="'$D/judge.sh'" COMMAND_TIMEOUT=60s
find_assessor
if wait_for 10 has_judges "$D" 1 && [[ -n $APID ]]; then
    ts=$(now_ms)
    kill -TERM "$APID"
    wait "$TPID"
    CODE=$?
    MS=$(($(now_ms) - ts))
    left=$(survivors "$D")
    row "3b SIGTERM to a single assessment, command running" \
        "judge.sh: sleep 300 & sleep 300; kill -TERM <assessor>" 143 \
        "signal -> exit $MS ms (wall time column); result: $([[ -f $D/result.json ]] && echo written || echo none); stderr: \"$(err_line "$D" 'ending the processes' 90)\", \"$(err_line "$D" 'no result written' 90)\"; alive 1 s later: $left" \
        "$([[ $left == none ]] || echo "survivors: $left")$([[ -f $D/result.json ]] && echo "; a result was written")"
else
    wait "$TPID"
    CODE=$?
    MS=$(($(now_ms) - T0))
    row "3b SIGTERM to a single assessment, command running" "judge.sh" 143 "the judge never started" "the judge never started"
fi

# 3c: a batch of 30 with a slow command judge, SIGTERM mid-way
D=$(newdir batch-sigterm)
mkdir -p "$D/pids"
cat >"$D/slow.sh" <<'SH'
#!/bin/sh
cat >/dev/null
sleep 0.3
echo '{"verdict":"accept","reasons":["slow judge"]}'
SH
chmod +x "$D/slow.sh"
for i in $(seq -f '%02g' 0 29); do
    simple_profile "b$i" "A flat with a garden."
    echo
done >"$D/profiles.jsonl"
spawn "$D" PROFILE_PATH="$D/profiles.jsonl" RESULT_DIR="$D/results" LLM_BACKEND=command \
    ASSESSOR_COMMAND="'$D/slow.sh'" COMMAND_TIMEOUT=60s ASSESSOR_JOBS=2 ASSESSOR_DRAIN_TIMEOUT=10s
find_assessor
four_done() { (($(count_results "$D/results") >= 4)); }
if wait_for 15 four_done && [[ -n $APID ]]; then
    at=$(count_results "$D/results")
    ts=$(now_ms)
    kill -TERM "$APID"
    wait "$TPID"
    CODE=$?
    MS=$(($(now_ms) - ts))
    n=$(count_results "$D/results")
    line=$(grep -oE -m1 "stopped by SIG[A-Z]+: [0-9a-z ]+ left; run again to resume" "$D/stderr")
    nleft=$(grep -oE '[0-9]+ left' <<<"$line" | grep -oE '[0-9]+')
    sleep 1
    alive=$(pgrep -f "$D/slow.sh" | tr '\n' ' ')
    problem=
    [[ -n $line ]] || problem="no 'N left' line"
    [[ -n $nleft ]] && ((n + nleft != 30)) && problem+="${problem:+; }written $n + left $nleft != 30"
    [[ -z $alive ]] || problem+="${problem:+; }judges alive: $alive"
    row "3c batch of 30, slow command judge (0.3 s), SIGTERM mid-way" \
        "ASSESSOR_JOBS=2, signal after $at results" 143 \
        "signal -> exit $MS ms; \"$line\"; results written $n (+ left = $((n + ${nleft:-0}))); judges alive 1 s later: ${alive:-none}" \
        "$problem"
else
    kill -TERM "$TPID" 2>/dev/null
    wait "$TPID"
    CODE=$?
    MS=$(($(now_ms) - T0))
    row "3c batch of 30, slow command judge, SIGTERM mid-way" "ASSESSOR_JOBS=2" 143 "no progress" "no progress"
fi

# 3d: a batch whose judges outlive the drain time (grandchildren, 500 ms drain)
D=$(newdir batch-abandon)
grandchild_judge "$D"
for i in $(seq -f '%02g' 0 5); do
    simple_profile "a$i" "A flat."
    echo
done >"$D/profiles.jsonl"
spawn "$D" PROFILE_PATH="$D/profiles.jsonl" RESULT_DIR="$D/results" LLM_BACKEND=command \
    ASSESSOR_COMMAND="'$D/judge.sh'" COMMAND_TIMEOUT=60s ASSESSOR_JOBS=2 ASSESSOR_DRAIN_TIMEOUT=500ms
find_assessor
if wait_for 10 has_judges "$D" 2 && [[ -n $APID ]]; then
    ts=$(now_ms)
    kill -TERM "$APID"
    wait "$TPID"
    CODE=$?
    MS=$(($(now_ms) - ts))
    line=$(grep -oE -m1 "stopped by SIG[A-Z]+: [0-9a-z ]+ left; run again to resume" "$D/stderr")
    left=$(survivors "$D")
    row "3d batch, judges with grandchildren outlive ASSESSOR_DRAIN_TIMEOUT=500ms, SIGTERM" \
        "6 profiles, ASSESSOR_JOBS=2, judge.sh: sleep 300 & sleep 300" 143 \
        "signal -> exit $MS ms; \"$line\"; results $(count_results "$D/results"); groups alive 1 s later: $left" \
        "$([[ $left == none ]] || echo "survivors: $left")$([[ -n $line ]] || echo "; no 'N left' line")"
else
    kill -TERM "$TPID" 2>/dev/null
    wait "$TPID"
    CODE=$?
    MS=$(($(now_ms) - T0))
    row "3d batch past its drain time" "" 143 "the judges never started" "the judges never started"
fi

# === 4. a huge Retry-After; a 245-character result name ========================
D=$(newdir retry-after)
simple_profile h1 "a flat" >"$D/profile.json"
run "$D" PROFILE_PATH="$D/profile.json" RESULT_PATH="$D/result.json" LLM_BACKEND=openai \
    LLM_BASE_URL="$SERVER/m/429huge/v1" LLM_MODEL=test-model LLM_API_KEY=sk-test LLM_RETRY_BASE_DELAY=50ms
kind=$(rj "$D/result.json" .error.kind)
row "4 429 with Retry-After: 18446744073709551615" "fake server, LLM_MAX_ATTEMPTS=4 (default)" 4 \
    "result: $kind \"$(rj "$D/result.json" .error.message | sed "s#$SERVER#http://127.0.0.1:PORT#" | cut -c1-120)\"; requests $(server_count 429huge)" \
    "$([[ $kind == rate_limited ]] || echo "error.kind $kind")"

D=$(newdir long-name)
simple_profile p1 "a flat" >"$D/profile.json"
name=$(printf 'r%.0s' $(seq 240)).json
run "$D" PROFILE_PATH="$D/profile.json" RESULT_PATH="$name" LLM_BACKEND=fixed
temps=$(find "$D" -maxdepth 1 -name '.*' -type f | wc -l)
row "4 RESULT_PATH file name of ${#name} characters" "r x 240 + .json, fixed backend" 0 \
    "result exists: $([[ -f $D/$name ]] && echo "yes, status $(rj "$D/$name" .status)" || echo no); temp files left: $temps" \
    "$([[ -f $D/$name ]] || echo "no result")$( ((temps == 0)) || echo "temp files left")"

# === 5. a key in LLM_BASE_URL's query =========================================
for status in 500 401; do
    D=$(newdir "url-secret-$status")
    simple_profile q1 "a flat with a garden" >"$D/profile.json"
    run "$D" PROFILE_PATH="$D/profile.json" RESULT_PATH="$D/result.json" LLM_BACKEND=openai \
        LLM_BASE_URL="$SERVER/m/$status-c5/v1?api-key=SECRET123" LLM_MODEL=test-model LLM_API_KEY=sk-test \
        LLM_MAX_ATTEMPTS=2 LLM_RETRY_BASE_DELAY=50ms
    leaks=
    grep -q SECRET123 "$D/stderr" && leaks+="stderr "
    grep -q SECRET123 "$D/stdout" && leaks+="stdout "
    [[ -f $D/result.json ]] && grep -q SECRET123 "$D/result.json" && leaks+="result "
    expected=4
    [[ $status == 401 ]] && expected=2
    row "5 LLM_BASE_URL=...$status.../v1?api-key=SECRET123, server answers $status" \
        "LLM_MAX_ATTEMPTS=2" "$expected" \
        "SECRET123 in stderr/stdout/result: ${leaks:-absent}; server got query: $(server_last "$status-c5" | grep -q 'api-key=SECRET123' && echo yes || echo no); shown as: \"$(rj "$D/result.json" .error.message | grep -oE -m1 '/v1/chat/completions\?[^: "]*')\"; result: $(rj "$D/result.json" .error.kind)" \
        "$([[ -z $leaks ]] || echo "SECRET123 leaked into $leaks")"
done

# === 6. a 1,000-line batch with one malformed line; all malformed ==============
D=$(newdir batch-1000)
for i in $(seq -f '%04g' 0 999); do
    if [[ $i == 0500 ]]; then
        echo '{not json'
    else
        simple_profile "x$i" "A flat."
        echo
    fi
done >"$D/in.jsonl"
run "$D" PROFILE_PATH="$D/in.jsonl" RESULT_DIR="$D/results" LLM_BACKEND=fixed
statuses=$(find "$D/results" -maxdepth 1 -name '*.json' ! -name '.*' -print0 | xargs -0 jq -r .status | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}')
invalid=$(grep -m1 'invalid profiles' "$D/stderr")
row "6 batch .jsonl of 1,000 lines, line 501 malformed" "fixed backend" 0 \
    "results: ${statuses%, }; summary: \"$invalid\" \"$(grep -m1 '| accepted |' "$D/stderr")\"; error at: $(jq -r 'select(.status=="error") | .error.message' "$D"/results/*.json 2>/dev/null | grep -oE 'line [0-9]+' | head -n1)" \
    "$([[ $statuses == *"ok 999"* && $statuses == *"error 1"* ]] || echo "results: $statuses")"

D=$(newdir batch-bad)
for i in $(seq 50); do echo "{broken $i"; done >"$D/in.jsonl"
run "$D" PROFILE_PATH="$D/in.jsonl" RESULT_DIR="$D/results" LLM_BACKEND=fixed
row "6 batch .jsonl, all 50 lines malformed" "fixed backend" 3 \
    "error results written: $(count_results "$D/results"); summary: \"$(grep -m1 'invalid profiles' "$D/stderr")\""

# === 7. refusals: 401, 403, 404, 404 without /v1 ================================
for mode in 401 403 404 v1only; do
    D=$(newdir "refusal-$mode")
    simple_profile ref1 "A flat." >"$D/p.json"
    base="$SERVER/m/$mode-c7/v1"
    setup="server answers $mode, LLM_MAX_ATTEMPTS=4"
    if [[ $mode == v1only ]]; then
        base="$SERVER/m/$mode-c7"
        setup="LLM_BASE_URL without /v1, server 404s all but /v1/chat/completions, LLM_MAX_ATTEMPTS=4"
    fi
    run "$D" PROFILE_PATH="$D/p.json" RESULT_PATH="$D/result.json" LLM_BACKEND=openai \
        LLM_BASE_URL="$base" LLM_MODEL=test-model LLM_API_KEY=sk-test-key-0123 LLM_MAX_ATTEMPTS=4 LLM_RETRY_BASE_DELAY=50ms
    kind=$(rj "$D/result.json" .error.kind)
    msg=$(rj "$D/result.json" .error.message)
    asked=$(server_count "$mode-c7")
    shown=${msg//"$SERVER"/http://127.0.0.1:PORT}
    hint=$(grep -oE 'did you mean LLM_BASE_URL=[^?]*\?' <<<"$shown")
    case $mode in
    401 | 403) want=backend_unauthorized ;;
    *) want=backend_not_found ;;
    esac
    problem=
    [[ $kind == "$want" ]] || problem="error.kind $kind, docs say $want"
    [[ $asked == 1 ]] || problem+="${problem:+; }$asked requests"
    [[ $mode == v1only && $msg != *"/v1"* ]] && problem+="${problem:+; }no /v1 hint"
    grep -q sk-test-key-0123 "$D/stderr" "$D/result.json" && problem+="${problem:+; }the API key leaked"
    row "7 refusal: $mode" "$setup" 2 \
        "result: $kind \"$(cut -c1-130 <<<"$shown")\"${hint:+; hint: \"$hint\"}; requests $asked" \
        "$problem"
done

# === 8. a batch resumed after a brief change ===================================
D=$(newdir stale)
for i in $(seq -f '%02g' 0 19); do
    simple_profile "st$i" "A flat with a garden."
    echo
done >"$D/in.jsonl"
stale_run() { # BRIEF
    run "$D" PROFILE_PATH="$D/in.jsonl" RESULT_DIR="$D/results" LLM_BACKEND=openai \
        LLM_BASE_URL="$SERVER/m/ok-c8/v1" LLM_MODEL=test-model LLM_API_KEY=sk-test ASSESSOR_CRITERIA="$1"
}
stale_run "Two bedrooms in Bristol."
first=$(server_count ok-c8)
fp1=$(jq -r .fingerprint "$D/results/st00.json")
stale_run "Two bedrooms in Bristol."
asked=$(($(server_count ok-c8) - first))
row "8 batch of 20 run again, brief unchanged" "openai fake server; run 1 made $first requests" 0 \
    "requests $asked; \"$(grep -m1 'skipped (already assessed)' "$D/stderr")\"" \
    "$( ((asked == 0)) || echo "$asked requests")$(grep -q 'judged again' "$D/stderr" && echo "; says judged again")"
before=$(server_count ok-c8)
stale_run "Three bedrooms in Bath."
asked=$(($(server_count ok-c8) - before))
fp2=$(jq -r .fingerprint "$D/results/st00.json")
row "8 same batch, ASSESSOR_CRITERIA changed" "openai fake server" 0 \
    "requests $asked; \"$(grep -m1 'judged again' "$D/stderr")\"; fingerprint $fp1 -> $fp2" \
    "$( ((asked == 20)) || echo "$asked requests")$(grep -q 'judged again (brief, rules or judge changed) | 20 |' "$D/stderr" || echo "; no 'judged again | 20' line")"

# --- report ------------------------------------------------------------------
echo "## Hostile cases of issue 13 against the real assessor"
echo
echo "- binary: \`${BIN#"$ROOT"/}\` ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $("$BIN" --version 2>/dev/null | head -n1))"
echo "- run: $(date -u +%Y-%m-%dT%H:%MZ), $(uname -sr), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- guard: \`timeout -k 2 $GUARD\` and \`prlimit --as=$MEM_BYTES\` on every run; wall time = process start to exit (3b-3d: signal to exit)"
echo
echo "| case | command / setup | exit | wall ms | what the result / stderr says | vs docs |"
echo "|---|---|---:|---:|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
if ((${#MISMATCHES[@]})); then
    echo "**${#MISMATCHES[@]} row(s) differ from the docs:**"
    printf -- '- %s\n' "${MISMATCHES[@]}"
    exit 1
fi
echo "Every row matches README.md and docs/contract.md."
