# shellcheck shell=bash
# The canned OpenAI-compatible endpoint the benchmarks compare against:
# nginx (Debian) on a free loopback port answering every POST to
# /v1/chat/completions with one fixed chat completion, plus a /capture/
# location that logs the request body the assessor sends, and /stats.
#
# Source it, then: start_canned_endpoint WORK CONTENT [WORKER_CONNECTIONS]
# (CONTENT is the message content, e.g. a verdict JSON). It sets PORT,
# ENDPOINT, NGINX_PID and NGINX_WORKER, and needs `nginx`, `jq`, `curl` and
# the caller's `die` and `log`. The caller stops NGINX_PID.

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_canned_endpoint() {
    local work=$1 content=$2 connections=${3:-1024}
    local nginx candidate canned canned_nginx
    nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
    PORT=
    for candidate in $(shuf -i 20000-60999 -n 50); do
        if port_is_free "$candidate"; then PORT=$candidate; break; fi
    done
    [[ -n $PORT ]] || die "no free port found"

    canned=$(jq -cn --arg content "$content" '{
        id: "chatcmpl-canned", object: "chat.completion", created: 1700000000, model: "canned",
        choices: [{index: 0, message: {role: "assistant", content: $content}, finish_reason: "stop"}],
        usage: {prompt_tokens: 400, completion_tokens: 20, total_tokens: 420}}')
    # nginx's quoted strings unescape \\ \" \' : double every backslash.
    canned_nginx=${canned//\\/\\\\}
    mkdir -p "$work/nginx/tmp"
    cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections $connections; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    log_format body escape=none '\$request_body';
    server {
        listen 127.0.0.1:$PORT;
        # The canned chat completion; return answers POST (a static file would be 405).
        location = /v1/chat/completions {
            default_type application/json;
            return 200 '$canned_nginx';
        }
        # Same answer through a proxy hop, logging the request body the assessor sends.
        location = /capture/v1/chat/completions {
            client_body_buffer_size 1m;
            client_max_body_size 1m;
            access_log $work/nginx/request-body.log body;
            proxy_pass http://127.0.0.1:$PORT/v1/chat/completions;
        }
        # Request counter.
        location = /stats { stub_status; }
    }
}
EOF
    "$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
    NGINX_PID=$!
    ENDPOINT=http://127.0.0.1:$PORT/v1/chat/completions
    for _ in $(seq 50); do
        curl -sf -o /dev/null -X POST -d '{}' "$ENDPOINT" 2>/dev/null && break
        kill -0 "$NGINX_PID" 2>/dev/null || { cat "$work/nginx/error.log" >&2; die "nginx did not start"; }
        sleep 0.1
    done
    curl -sf -X POST -d '{}' "$ENDPOINT" | jq -e --arg c "$content" '.choices[0].message.content == $c' >/dev/null \
        || die "the canned endpoint does not answer the expected completion"
    NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -n 1)
    [[ -n $NGINX_WORKER ]] || die "no nginx worker process"
    log "nginx (pid $NGINX_PID, worker $NGINX_WORKER) serves the canned completion at $ENDPOINT"
}
