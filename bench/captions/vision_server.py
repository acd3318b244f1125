#!/usr/bin/env python3
"""A stand-in vision model for bench/captions.sh: an OpenAI-compatible
`POST /v1/chat/completions` that answers every caption request after a fixed
delay (200 ms by default). Python 3 standard library only.

    python3 bench/captions/vision_server.py [PORT [LATENCY_MS]]

PORT 0 (the default) picks a free port. The port actually bound is printed
on stdout as the first line, then flushed, so a caller can read it.

A request must carry a user content part `{"type": "image_url", "image_url":
{"url": "data:image/..."}}`; any other body is answered 400 with an
OpenAI-style error object. Valid requests sleep LATENCY_MS (in the handler's
own thread: ThreadingHTTPServer serves each connection in a thread, so
concurrent requests overlap), then get a chat completion whose
`choices[0].message.content` is a short caption naming the image's digest,
with `finish_reason: "stop"` and `usage`.

`GET /health` answers 200. `GET /stats` answers the counters as JSON:
requests (valid, answered 200), bad_requests (answered 400), in_flight, and
peak_in_flight (most valid requests in their delay at once);
`GET /stats?reset=1` answers them and then zeroes them (in_flight aside).
"""

import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LATENCY_S = 0.200
MAX_BODY = 64 * 1024 * 1024

_lock = threading.Lock()
_stats = {"requests": 0, "bad_requests": 0, "in_flight": 0, "peak_in_flight": 0}
_seq = 0


def find_image_url(body):
    """The first `data:image/` URL of an image_url content part, or None."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return None
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            image_url = part.get("image_url")
            url = image_url.get("url") if isinstance(image_url, dict) else image_url
            if isinstance(url, str) and url.startswith("data:image/"):
                return url
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client may reuse connections
    # TCP_NODELAY, as real servers set it. Without it the body, written after
    # the headers, waits for the client's delayed ACK of the headers (40 ms on
    # Linux) on every reused keep-alive connection.
    disable_nagle_algorithm = True
    server_version = "bench-vision/1"

    def log_message(self, fmt, *args):  # quiet: the bench reads /stats instead
        pass

    def _send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length)

    def _bad_request(self, message):
        with _lock:
            _stats["bad_requests"] += 1
        self._send_json(400, {"error": {"message": message, "type": "invalid_request_error",
                                        "param": None, "code": None}})

    def do_GET(self):
        if self.path == "/health":
            self._send_json(200, {"ok": True})
        elif self.path in ("/stats", "/stats?reset=1"):
            with _lock:
                snapshot = dict(_stats)
                if self.path.endswith("reset=1"):
                    _stats.update(requests=0, bad_requests=0, peak_in_flight=_stats["in_flight"])
            self._send_json(200, snapshot)
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self):
        global _seq
        try:
            raw = self._read_body()
        except (ValueError, OSError) as e:
            self.close_connection = True
            return self._bad_request(f"unreadable body: {e}")
        if self.path.split("?")[0] != "/v1/chat/completions":
            return self._send_json(404, {"error": {"message": "not found", "type": "not_found"}})
        try:
            body = json.loads(raw)
        except ValueError:
            return self._bad_request("body is not JSON")
        url = find_image_url(body)
        if url is None:
            return self._bad_request("no image_url content part with a data:image/ URI")

        with _lock:
            _stats["in_flight"] += 1
            _stats["peak_in_flight"] = max(_stats["peak_in_flight"], _stats["in_flight"])
            _seq += 1
            seq = _seq
        try:
            time.sleep(LATENCY_S)
        finally:
            with _lock:
                _stats["in_flight"] -= 1
                _stats["requests"] += 1

        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        caption = f"A small solid-colour test image ({digest}): no rooms, no defects visible."
        prompt_tokens = 85 + len(url) // 1000
        completion_tokens = 16
        self._send_json(200, {
            "id": f"chatcmpl-bench-{seq}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "bench-vision",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": caption},
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        })


class Server(ThreadingHTTPServer):
    daemon_threads = True      # do not wait for open keep-alive connections at exit
    request_queue_size = 128   # listen backlog: a burst of connections is never refused
    allow_reuse_address = True


def main():
    global LATENCY_S
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if len(sys.argv) > 2:
        LATENCY_S = float(sys.argv[2]) / 1000.0
    server = Server(("127.0.0.1", port), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
