#!/usr/bin/env python3
"""Smoke test for the benchmark suite: runs uvaio_bench at a tiny size and
checks that its table parses. It checks no speed: speed targets belong in the
benchmark's output, not in a test that a busy machine would fail.

    check_bench_output.py path/to/uvaio_bench [extra uvaio_bench arguments]
"""

import math
import os
import subprocess
import sys

HEADER = ["name", "uvaio_ns_per_op", "baseline_ns_per_op", "ratio", "asyncio_ns_per_op", "uvaio_per_asyncio", "notes"]
CORE = ["roundtrip", "batch64", "batch1024", "fanout", "mixed", "spawn", "sleep0", "timers", "threadsafe"]
POOL = ["threadpool_roundtrip", "threadpool_batch64", "threadpool_batch1024", "threadpool_fanout", "threadpool_mixed"]
WITH_ASYNCIO = ["roundtrip", "fanout", "spawn", "sleep0", "timers", "threadsafe"]


def number(text, where):
    if text == "-":
        return None
    try:
        value = float(text)
    except ValueError:
        sys.exit(f"{where}: {text!r} is neither a number nor '-'")
    if not math.isfinite(value) or value < 0:
        sys.exit(f"{where}: {text!r} is not a finite non-negative number")
    return value


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    command = [sys.argv[1], "--scale", "0.01", "--rounds", "1", "--no-warmup", *sys.argv[2:]]
    env = dict(os.environ, UVAIO_BENCH_PYTHON=sys.executable)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=280)
    sys.stderr.write(result.stderr)
    print(result.stdout, end="")
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited with status {result.returncode}")

    lines = result.stdout.splitlines()
    if not lines or lines[0].split() != HEADER:
        sys.exit(f"the first line is not the header {HEADER}")
    rows = {}
    comments = []
    for number_, line in enumerate(lines[1:], start=2):
        if line.startswith("#"):
            comments.append(line)
            continue
        fields = line.split()
        if len(fields) != len(HEADER):
            sys.exit(f"line {number_}: {len(fields)} fields, expected {len(HEADER)}: {line!r}")
        name = fields[0]
        values = [number(f, f"line {number_} ({name}) {HEADER[i + 1]}") for i, f in enumerate(fields[1:6])]
        uvaio, baseline, ratio, asyncio_ns, per_asyncio = values
        if uvaio is None or baseline is None or ratio is None:
            sys.exit(f"line {number_} ({name}): uvaio, baseline and ratio are required")
        if baseline > 0 and abs(ratio - uvaio / baseline) > 0.002 * max(1.0, ratio):
            sys.exit(f"line {number_} ({name}): ratio {ratio} is not uvaio / baseline")
        if fields[6] != "-":
            for pair in fields[6].split(","):
                key, sep, value = pair.partition("=")
                if not sep or not key:
                    sys.exit(f"line {number_} ({name}): note {pair!r} is not key=value")
        rows[name] = (values, fields[6])

    expected = list(CORE)
    if not any("ThreadPoolExecutor not built" in c for c in comments):
        expected += POOL
    missing = [n for n in expected if n not in rows]
    if missing:
        sys.exit(f"missing workloads: {missing}")
    if not any("asyncio column skipped" in c for c in comments):
        for name in WITH_ASYNCIO:
            if rows[name][0][3] is None:
                sys.exit(f"{name}: no asyncio figure")
    for name in ("mixed", "threadpool_mixed"):
        if name in rows and "eff_uvaio=" not in rows[name][1]:
            sys.exit(f"{name}: no parallel efficiency in the notes")
    if "rss_beyond_frame_B=" not in rows["timers"][1]:
        sys.exit("timers: no RSS per pending sleep in the notes")
    print(f"ok: {len(rows)} workloads parsed")


if __name__ == "__main__":
    main()
