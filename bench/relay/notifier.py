#!/usr/bin/env python3
"""bench/relay/notifier.py: the local webhook receiver of bench/relay.sh.

    python3 notifier.py PORT LOG

Listens on 127.0.0.1:PORT, answers every complete HTTP/1.1 request at once
with `200` and an empty body (keep-alive unless the client asked to close),
and then appends one line per POST to LOG:

    <arrival CLOCK_MONOTONIC ns> <id> <webhook-id or -> <body bytes>

The arrival time is `time.monotonic_ns()` taken at the top of the
`data_received` call that completed the request (headers and body), that is
as soon as the event loop saw the last bytes. The id is the result's: `id` of
a posted result file (the inotifywait | curl peer posts the file itself),
else `assessment.id`, else `metadata.id` (the relay's JSON webhook body).

GET /health answers 200 (readiness). Anything unparsable gets a 400, and a
line with id `!bad`, so a sanity check sees it. Stops on SIGTERM/SIGINT.
"""

import asyncio
import json
import signal
import sys
import time

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
OK_CLOSE = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
BAD = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def result_id(body):
    try:
        doc = json.loads(body)
    except ValueError:
        return "!bad-json"
    if not isinstance(doc, dict):
        return "!bad-json"
    for path in (("id",), ("assessment", "id"), ("metadata", "id")):
        value = doc
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return value
    return "!no-id"


class Hook(asyncio.Protocol):
    def __init__(self, log):
        self.log = log
        self.buf = b""
        self.head = None  # (method, path, headers, header_len, content_length)
        self.continued = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        now = time.monotonic_ns()
        self.buf += data
        while self.transport is not None:
            if self.head is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = self.buf[:end].decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                if len(parts) != 3 or "chunked" in headers.get("transfer-encoding", "").lower():
                    self.fail(now)
                    return
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    self.fail(now)
                    return
                self.head = (parts[0], parts[1], headers, end + 4, length)
                self.continued = False
            method, path, headers, start, length = self.head
            if len(self.buf) < start + length:
                if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                    self.continued = True
                    self.transport.write(CONTINUE)
                return
            body = self.buf[start : start + length]
            self.buf = self.buf[start + length :]
            self.head = None
            close = headers.get("connection", "").lower() == "close"
            self.transport.write(OK_CLOSE if close else OK)
            if close:
                self.transport.close()
                self.transport = None
            if method == "POST":
                self.log.write(
                    f"{now} {result_id(body)} {headers.get('webhook-id', '-')} {length}\n"
                )
            if not self.buf:
                return

    def fail(self, now):
        self.log.write(f"{now} !bad - 0\n")
        self.transport.write(BAD)
        self.transport.close()
        self.transport = None


async def main(port, log_path):
    # Line-buffered: each record reaches the file (not the disk) at once, so the
    # driver can read receipts while the server runs.
    with open(log_path, "a", buffering=1) as log:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Hook(log), "127.0.0.1", port, reuse_address=True, backlog=512
        )
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        async with server:
            await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
