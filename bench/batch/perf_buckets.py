#!/usr/bin/env python3
"""Splits a perf profile of a batch run into coarse buckets (docs/BENCHMARKS.md,
"Where the batch's time goes"). Ad hoc, not run by bench/batch.sh.

    perf record -e cpu-clock -F 2999 -g --call-graph dwarf,16384 -o perf.data <unstripped assessor>
    perf script -i perf.data -F comm,tid,ip,sym --no-inline > perf.txt
    python3 bench/batch/perf_buckets.py perf.txt [--syscalls]

Every sample goes to the first bucket whose pattern matches any frame of its
stack (order matters: a result write's futex wait counts as the write). The
main thread is the first thread seen (the process starts on it); with
--syscalls, the samples under write_atomic are also split by system call.
"""

import collections
import re
import sys

BUCKETS = [
    ("start-up (loader, config, clients)", r"_dl_start|_dl_relocate|Settings::from_env|ChatHttp::new|Assessor::new|logging::init"),
    ("input: read + parse JSONL, stable_id", r"batch::input::read_into|count_entries"),
    ("result write: write_atomic (blocking pool)", r"write_atomic"),
    ("resume check: has_ok_result (tokio::fs::read)", r"has_ok_result|tokio::fs::read::read"),
    ("spawn_blocking hand-off (caller side)", r"spawn_blocking|blocking::pool::Spawner"),
    ("render the result (pretty JSON) + JSONL line", r"output::render|serde_json::ser::to_vec"),
    ("prompt + request body", r"PromptBuilder|request_body|prompt::datamark|CreateChatCompletionRequestArgs"),
    ("reply parse + verdict validation", r"reply::interpret|verdict::|jsonschema"),
    ("HTTP client (reqwest/hyper)", r"hyper|reqwest|h2::|tower_http|async_openai::executor"),
    ("summary / progress", r"summary::Summary|progress::Progress"),
    ("tokio scheduler, park/wake, I/O driver", r"tokio::runtime::(scheduler|park|driver|io|time)|epoll_wait|Condvar.*wait|blocking::pool::Inner::run"),
]


def samples(path):
    head, frames = None, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                if head:
                    yield head, frames
                head, frames = None, []
            elif not line.startswith("\t"):
                head = line.split()[:2]
            else:
                parts = line.strip().split(None, 1)
                kernel = parts[0].startswith("ffffffff")
                frames.append(("K " if kernel else "") + (parts[1] if len(parts) > 1 else "?"))
    if head:
        yield head, frames


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    rules = [(name, re.compile(p)) for name, p in BUCKETS]
    total, by_thread, calls = collections.Counter(), collections.Counter(), collections.Counter()
    main_tid, n, writes = None, 0, 0
    for (comm, tid), frames in samples(sys.argv[1]):
        main_tid = main_tid or tid
        stack = " ; ".join(frames)
        bucket = next((name for name, r in rules if r.search(stack)), "other (serde, malloc/free, pipeline glue)")
        n += 1
        total[bucket] += 1
        by_thread[(bucket, tid == main_tid)] += 1
        if "write_atomic" in stack:
            writes += 1
            m = re.search(r"__x64_sys_(\w+)", stack)
            calls[m.group(1) if m else "user space"] += 1
    print(f"{n} samples; main thread {100 * sum(v for (b, m), v in by_thread.items() if m) / n:.1f} %")
    print("| bucket | all | main thread | other threads |")
    print("| --- | ---: | ---: | ---: |")
    for bucket, count in total.most_common():
        print(f"| {bucket} | {100 * count / n:.1f} % | {100 * by_thread[(bucket, True)] / n:.1f} % "
              f"| {100 * by_thread[(bucket, False)] / n:.1f} % |")
    if len(sys.argv) == 3 and writes:
        print(f"\nwrite_atomic: {writes} samples")
        for call, count in calls.most_common():
            print(f"- {call}: {100 * count / writes:.1f} %")


if __name__ == "__main__":
    main()
