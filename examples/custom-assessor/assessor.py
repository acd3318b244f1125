#!/usr/bin/env python3
"""A custom assessor in Python: a keyword judge that honours the file
contract (docs/contract.md) and nothing else, to show what replacing the
assessor image takes.

It reads the profile at PROFILE_PATH, accepts a listing whose text names
any of ACCEPT_KEYWORDS and none of REJECT_KEYWORDS (comma-separated, case
insensitive), and writes the result to RESULT_PATH atomically: a hidden temp
file in the same directory, fsync, rename, fsync of the directory, so the
relay never reads half a result. With ASSESSOR_AWAIT_DELIVERY (the base Job
sets 5m) it then waits for the relay's receipt of an accepted result, as the
real assessor does, so the Job succeeds only once the verdict is delivered.

Exit codes are the contract's: 0 assessed, 2 configuration error, 3 invalid
or missing profile (an error result is written), 5 the result could not be
written, 6 delivery not confirmed in time. Only the standard library: the
image needs nothing installed.
"""

import datetime
import hashlib
import json
import os
import re
import sys
import tempfile
import time

NAME = "keyword-assessor"
VERSION = "0.1.0"
DEFAULT_ACCEPT = "garden,balcony,terrace"
DEFAULT_REJECT = "auction,shared ownership,retirement"


def log(message, **fields):
    """One JSON line on stderr, like the other containers' logs."""
    print(json.dumps({"level": "info", "message": message, **fields}), file=sys.stderr, flush=True)


def fail(code, message):
    print(f"{NAME}: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def keywords(variable, default):
    value = os.environ.get(variable, default)
    words = [w.strip().lower() for w in value.split(",") if w.strip()]
    if not words:
        fail(2, f"{variable} is empty; expected comma-separated keywords")
    return words


def duration(variable):
    """ASSESSOR_AWAIT_DELIVERY-style durations: 500ms, 20s, 5m, 1h."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if not match:
        fail(2, f"{variable}={value!r} is invalid: expected a number and a unit (ms, s, m, h)")
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def result_id(profile):
    """metadata.id, else sha256- and 16 hex digits of the canonical JSON."""
    metadata = profile.get("metadata") if isinstance(profile.get("metadata"), dict) else {}
    if isinstance(metadata.get("id"), (str, int)) and not isinstance(metadata.get("id"), bool):
        return str(metadata["id"])
    canonical = json.dumps(profile, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def write_atomically(path, result):
    directory = os.path.dirname(path) or "."
    name = os.path.basename(path)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        # mkstemp makes it 0600; the relay runs as the same user in the
        # pod, but other readers (kubectl cp, a debug container) may not.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(result, f, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def base_result():
    return {
        "schema": "shortlist.result/v1",
        "assessor": {"name": NAME, "version": VERSION},
        "backend": {"kind": "keywords", "model": None},
        "assessed_at": now(),
    }


def write_or_exit(path, result):
    try:
        write_atomically(path, result)
    except OSError as e:
        print(json.dumps(result), flush=True)
        fail(5, f"RESULT_PATH={path}: cannot write the result: {e}")


def main():
    profile_path = os.environ.get("PROFILE_PATH")
    result_path = os.environ.get("RESULT_PATH")
    if not profile_path or not result_path:
        fail(2, "set PROFILE_PATH (the profile to read) and RESULT_PATH (where the result goes)")
    accept_words = keywords("ACCEPT_KEYWORDS", DEFAULT_ACCEPT)
    reject_words = keywords("REJECT_KEYWORDS", DEFAULT_REJECT)
    await_delivery = duration("ASSESSOR_AWAIT_DELIVERY")
    # A receipt left by an earlier result must not count for this one.
    receipt_path = result_path + ".receipt"
    if os.path.exists(receipt_path):
        os.unlink(receipt_path)

    try:
        with open(profile_path, encoding="utf-8") as f:
            profile = json.load(f)
        if not isinstance(profile, dict):
            raise ValueError("expected a JSON object")
        text = profile.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError('field "text" is required (a non-empty string)')
    except (OSError, ValueError) as e:
        kind = "profile_unreadable" if isinstance(e, OSError) else "profile_invalid"
        result = {**base_result(), "id": None, "status": "error", "verdict": None, "score": None,
                  "reasons": [], "decided_by": None, "profile": None,
                  "error": {"kind": kind, "message": f"{os.path.basename(profile_path)}: {e}"}}
        write_or_exit(result_path, result)
        fail(3, f"PROFILE_PATH={profile_path}: {e}")

    lowered = text.lower()
    hits = [w for w in accept_words if w in lowered]
    vetoes = [w for w in reject_words if w in lowered]
    verdict = "accept" if hits and not vetoes else "reject"
    if vetoes:
        reasons = [f"mentions {w!r}" for w in vetoes]
    elif hits:
        reasons = [f"mentions {w!r}" for w in hits]
    else:
        reasons = ["names none of " + ", ".join(accept_words)]
    identifier = result_id(profile)
    result = {**base_result(), "id": identifier, "status": "ok", "verdict": verdict, "score": None,
              "reasons": reasons, "decided_by": "keywords", "profile": profile, "error": None}
    write_or_exit(result_path, result)
    log("assessed", id=identifier, verdict=verdict, reasons=reasons)

    if verdict != "accept" or await_delivery is None:
        return 0
    # The relay writes RESULT_PATH.receipt once every notifier has the
    # result (docs/contract.md, "Delivery receipts").
    deadline = time.monotonic() + await_delivery
    while time.monotonic() < deadline:
        try:
            with open(receipt_path, encoding="utf-8") as f:
                receipt = json.load(f)
            if str(receipt.get("id")) == identifier:
                log("delivery confirmed", id=identifier, outcome=receipt.get("outcome"))
                return 0
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    fail(6, f"delivery not confirmed: no receipt at {receipt_path} within ASSESSOR_AWAIT_DELIVERY")


if __name__ == "__main__":
    sys.exit(main())
