#!/usr/bin/env python3
"""Checks hashdir against Python's hashlib, and its exit status on bad usage.

usage: check_hashdir.py HASHDIR DIR
"""

import hashlib
import os
import subprocess
import sys


def expected_listing(root):
    lines = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(directory, d))]
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            lines.append((relative.encode(), f"{digest}  {relative}"))
    lines.sort()  # hashdir sorts by the bytes of the relative path
    return [line for _, line in lines]


def main():
    hashdir, root = sys.argv[1], sys.argv[2]
    problems = []

    run = subprocess.run([hashdir, root], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        problems.append(f"hashdir {root}: exit status {run.returncode}\n{run.stderr}")
    got = run.stdout.splitlines()
    want = expected_listing(root)
    if got != want:
        problems.append("listing differs from hashlib's:\n  got  " + "\n  got  ".join(got[:5]) +
                        "\n  want " + "\n  want ".join(want[:5]))
    if "worst ticker lateness" not in run.stderr:
        problems.append("no summary on stderr:\n" + run.stderr)

    for args in ([], [root, "--jobs", "0"], [root, "--jobs"], [root, "--frobnicate"],
                 [os.path.join(root, "does-not-exist")]):
        bad = subprocess.run([hashdir, *args], capture_output=True, text=True, check=False)
        if bad.returncode != 2 or "usage: hashdir" not in bad.stderr:
            problems.append(f"hashdir {args}: want exit status 2 and a usage message, got "
                            f"{bad.returncode}: {bad.stderr!r}")

    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"hashdir: {len(got)} files match hashlib; bad usage exits 2")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
