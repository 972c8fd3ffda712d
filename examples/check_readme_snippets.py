#!/usr/bin/env python3
"""Fails when a code snippet in the README no longer matches its source.

usage: check_readme_snippets.py README.md SOURCE_ROOT

A snippet is a fenced code block preceded by a comment naming its source:

    <!-- snippet: examples/quickstart.cpp -->          the whole file
    <!-- snippet: examples/hashdir.cpp#worker -->      a region of it

A region is the text between the lines `// [snippet:worker]` and `// [end]`
(`# [snippet:...]` / `# [end]` in meson and Python files), without its common
indentation. Marker lines never appear in a snippet. Every ```cpp and ```meson
block must name its source; shell blocks need not.
"""

import re
import sys
import textwrap
from pathlib import Path

MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(\S+?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
REGION_START = re.compile(r"^\s*(//|#)\s*\[snippet:([\w.-]+)\]\s*$")
REGION_END = re.compile(r"^\s*(//|#)\s*\[end\]\s*$")
CHECKED_LANGUAGES = {"cpp", "c++", "meson"}


def is_marker_line(line):
    return bool(REGION_START.match(line) or REGION_END.match(line))


def source_text(root, spec):
    path, _, region = spec.partition("#")
    lines = (root / path).read_text().splitlines()
    if not region:
        return "\n".join(line for line in lines if not is_marker_line(line)).strip("\n")
    inside = False
    found = None
    for line in lines:
        start = REGION_START.match(line)
        if start and start.group(2) == region:
            if found is not None:
                raise ValueError(f"region '{region}' appears twice in {path}")
            inside, found = True, []
        elif inside and REGION_END.match(line):
            inside = False
        elif inside and not is_marker_line(line):
            found.append(line)
    if found is None:
        raise ValueError(f"no region '{region}' in {path}")
    if inside:
        raise ValueError(f"region '{region}' in {path} has no // [end]")
    return textwrap.dedent("\n".join(found)).strip("\n")


def readme_blocks(readme):
    """Yields (line number, language, source spec or None, text) per fenced block."""
    lines = readme.splitlines()
    spec = None
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        fence = FENCE.match(lines[i])
        if marker:
            spec = marker.group(1)
        elif fence:
            indent, ticks, language = fence.groups()
            start = i
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(ticks):
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
                i += 1
            yield start + 1, language.lower(), spec, "\n".join(body).strip("\n")
            spec = None
        elif lines[i].strip():
            spec = None  # a marker applies to the block right after it
        i += 1


def main():
    readme_path, root = Path(sys.argv[1]), Path(sys.argv[2])
    problems = []
    checked = 0
    for line, language, spec, text in readme_blocks(readme_path.read_text()):
        if spec is None:
            if language in CHECKED_LANGUAGES:
                problems.append(f"{readme_path.name}:{line}: ```{language} block names no source "
                                f"(put <!-- snippet: examples/FILE --> before it)")
            continue
        try:
            want = source_text(root, spec)
        except (OSError, ValueError) as error:
            problems.append(f"{readme_path.name}:{line}: {spec}: {error}")
            continue
        checked += 1
        if text != want:
            got_lines, want_lines = text.splitlines(), want.splitlines()
            n = next((k for k, (a, b) in enumerate(zip(got_lines, want_lines)) if a != b),
                     min(len(got_lines), len(want_lines)))
            problems.append(f"{readme_path.name}:{line}: snippet differs from {spec} at its line {n + 1}:\n"
                            f"  README: {got_lines[n] if n < len(got_lines) else '<end>'}\n"
                            f"  source: {want_lines[n] if n < len(want_lines) else '<end>'}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if checked == 0 and not problems:
        problems.append("no snippets found")
        print(f"{readme_path}: no snippets found", file=sys.stderr)
    if not problems:
        print(f"{checked} README snippets match their sources")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
