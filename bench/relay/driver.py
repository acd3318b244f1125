#!/usr/bin/env python3
"""bench/relay/driver.py: renames results into a watched directory, one at a
time, and matches each with its receipt at the notifier.

    python3 driver.py --dir DIR --prefix NAME --count N --gap-ms G \
        --receipts NOTIFIER_LOG --out RUN.json [--timeout-s 30]

For i in 1..N: the result `{NAME}-{i:06d}.json` (verdict accept, id
`{NAME}-{i:06d}`) is written to `DIR/.{NAME}-{i:06d}.json.tmp` (write + close,
no fsync, before the timed instant), then `time.monotonic_ns()` is read just
before `os.rename()` moves it to its final name in the same directory, and the
driver sleeps G ms before the next one (so the peer is idle when the next
result comes: this measures latency, not throughput). Each temp file is written
right after the previous rename, so its own inotify events (create, modify,
close_write on a `.tmp` name) reach the peer during the gap, as an assessor's
would.

It then waits (up to --timeout-s) until the notifier log holds a receipt for
every id, and writes RUN.json: per-result latency (receipt - rename, both
CLOCK_MONOTONIC), both instants (ms after the first rename), percentiles,
duplicates, missing ids and requests without a webhook-id header. Exits 1
when a receipt is missing.
"""

import argparse
import json
import math
import os
import time


def result_doc(rid):
    return {
        "schema": "shortlist.result/v1",
        "id": rid,
        "status": "ok",
        "verdict": "accept",
        "score": 0.9,
        "reasons": ["bench"],
        "decided_by": "llm",
        "profile": {
            "text": "Bench listing: two-bedroom terrace, Easton, Bristol. Guide price £335,000.",
            "metadata": {"id": rid, "price": "£335,000", "location": "Easton, Bristol"},
        },
    }


def write_tmp(path, rid):
    data = json.dumps(result_doc(rid), ensure_ascii=False).encode() + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def percentile(sorted_values, p):
    """Nearest rank: the smallest value with at least p % of values <= it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def read_receipts(path):
    receipts = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 4:
                    continue
                receipts.setdefault(parts[1], []).append((int(parts[0]), parts[2]))
    except FileNotFoundError:
        pass
    return receipts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--gap-ms", type=float, default=10.0)
    ap.add_argument("--receipts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout-s", type=float, default=30.0)
    args = ap.parse_args()

    ids = [f"{args.prefix}-{i:06d}" for i in range(1, args.count + 1)]
    tmp = lambda rid: os.path.join(args.dir, f".{rid}.json.tmp")  # noqa: E731
    final = lambda rid: os.path.join(args.dir, f"{rid}.json")  # noqa: E731
    gap = args.gap_ms / 1000.0

    sent = {}
    write_tmp(tmp(ids[0]), ids[0])
    time.sleep(gap)
    for i, rid in enumerate(ids):
        t0 = time.monotonic_ns()
        os.rename(tmp(rid), final(rid))
        sent[rid] = t0
        if i + 1 < len(ids):
            write_tmp(tmp(ids[i + 1]), ids[i + 1])
        # Sleep out the rest of the gap, measured from the rename.
        left = gap - (time.monotonic_ns() - t0) / 1e9
        if left > 0:
            time.sleep(left)

    deadline = time.monotonic() + args.timeout_s
    while True:
        receipts = read_receipts(args.receipts)
        missing = [rid for rid in ids if rid not in receipts]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    latencies = []
    renamed_at = []  # ms after the first rename
    received_at = []
    first = sent[ids[0]]
    duplicates = 0
    no_webhook_id = 0
    for rid in ids:
        got = receipts.get(rid)
        if not got:
            continue
        duplicates += len(got) - 1
        t1, webhook_id = got[0]
        if webhook_id == "-":
            no_webhook_id += 1
        latencies.append((t1 - sent[rid]) / 1e6)
        renamed_at.append((sent[rid] - first) / 1e6)
        received_at.append((t1 - first) / 1e6)
    bad = sum(len(v) for k, v in receipts.items() if k.startswith("!"))
    ordered = sorted(latencies)
    summary = {
        "prefix": args.prefix,
        "count": args.count,
        "gap_ms": args.gap_ms,
        "received": len(latencies),
        "missing": len(missing),
        "missing_ids": missing[:10],
        "duplicates": duplicates,
        "bad_requests": bad,
        "without_webhook_id": no_webhook_id,
        "min_ms": ordered[0] if ordered else None,
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else None,
        "mean_ms": sum(ordered) / len(ordered) if ordered else None,
        "over_10ms": sum(1 for v in ordered if v > 10.0),
        "latencies_ms": latencies,
        "renamed_at_ms": renamed_at,
        "received_at_ms": received_at,
    }
    with open(args.out, "w") as f:
        json.dump(summary, f)
    print(
        f"{args.prefix}: received {len(latencies)}/{args.count}, "
        f"p50 {summary['p50_ms'] or 0:.3f} ms, p99 {summary['p99_ms'] or 0:.3f} ms, "
        f"max {summary['max_ms'] or 0:.3f} ms",
        flush=True,
    )
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
