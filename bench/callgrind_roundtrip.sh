#!/usr/bin/env bash
# Instructions per roundtrip (one no-op to_thread awaited after the other),
# uvaio against a raw uv_queue_work chain, counted by valgrind's callgrind:
# a figure that does not depend on how busy the machine is.
#
#   bench/callgrind_roundtrip.sh [builddir]      (default: build-bench)
#   env: N=10000 (ops; the second size is 2N), REPEATS=3, SIDES="raw uvaio"
#        (add "pool" for ThreadPoolExecutor when it is built)
#
# Method (each choice removes a source of run-to-run spread):
# - Only the timed part, on the loop thread: every side runs its timed part
#   inside uvaio_bench_measured(), and --collect-atstart=no
#   --toggle-collect=uvaio_bench_measured counts only there; collection is
#   per thread, so the worker threads count nothing (--separate-threads=yes
#   writes them apart anyway; the loop thread is the file ending in -01).
# - Fixed costs cancel: per op = (I(2N) - I(N)) / N.
# - UV_THREADPOOL_SIZE=1 and --fair-sched=yes: one worker, threads scheduled
#   in turn.
# - Busy-waiting is not work: the rest of the spread comes from libuv's
#   uv__async_io, which spins (pause; lock cmpxchg; up to 997 times, then
#   sched_yield) while the thread that called uv_async_send is between marking
#   the handle pending and finishing. Under valgrind a thread loses the CPU at
#   every syscall -- including the write() inside uv_async_send -- so how long
#   the loop thread spins there is pure scheduling luck (it varies by up to
#   ~70 instructions per op between runs). The script finds every spin loop in
#   the objects involved (a loop around a `pause` instruction, by objdump) and
#   subtracts the instructions counted inside such loops and in sched_yield.
#   What is left repeats to within a few instructions per op.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build-bench}
bench=$build/bench/uvaio_bench
N=${N:-10000}
REPEATS=${REPEATS:-3}
SIDES=${SIDES:-raw uvaio}

for tool in valgrind objdump python3; do
  command -v "$tool" >/dev/null || { echo "callgrind_roundtrip.sh: $tool not found" >&2; exit 1; }
done
[[ -x $bench ]] || { echo "callgrind_roundtrip.sh: $bench not found (meson setup $build -Dbenchmarks=true)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Prints "<counted> <busy-wait>" for the loop thread of one callgrind run.
count() {
  python3 - "$1" <<'PY'
import collections, re, subprocess, sys

cost = collections.Counter()      # (object, address) -> self instructions
fn_cost = collections.Counter()   # function name -> self instructions
total = None
obj = fn = None
skip_next = False                 # the line after calls= is a call's inclusive cost
with open(sys.argv[1]) as f:
    for line in f:
        if line.startswith("ob="):
            obj = line[3:].strip()
        elif line.startswith("fn="):
            fn = line[3:].strip()
        elif line.startswith("calls="):
            skip_next = True
        elif line.startswith("totals:"):
            total = int(line.split()[1])
        elif line.startswith("0x"):
            if skip_next:
                skip_next = False
                continue
            parts = line.split()
            if len(parts) >= 3:
                cost[(obj, int(parts[0], 16))] += int(parts[2])
                fn_cost[fn] += int(parts[2])

def spin_loops(path):
    """(first, last) address of each loop that contains a pause instruction."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path],
                          capture_output=True, text=True).stdout
    insns = []
    for line in text.splitlines():
        m = re.match(r"\s+([0-9a-f]+):\s+(\S+)\s*(.*)", line)
        if m:
            insns.append((int(m.group(1), 16), m.group(2), m.group(3)))
    loops = []
    for i, (addr, op, _) in enumerate(insns):
        if op != "pause":
            continue
        for later, op2, args in insns[i + 1:i + 24]:
            target = re.match(r"([0-9a-f]+)\b", args)
            if op2.startswith("j") and target and int(target.group(1), 16) <= addr:
                loops.append((min(addr, int(target.group(1), 16)), later))
                break
    return loops

busy = 0
by_object = collections.defaultdict(list)
for (o, addr), c in cost.items():
    by_object[o].append((addr, c))
for o, entries in by_object.items():
    if not o or not o.startswith("/"):
        continue
    loops = spin_loops(o)
    for addr, c in entries:
        if any(lo <= addr <= hi for lo, hi in loops):
            busy += c
busy += sum(c for name, c in fn_cost.items() if name and "sched_yield" in name)
print(total, busy)
PY
}

run_once() {  # side ops -> "<counted> <busy-wait>"
  local out=$work/cg.$1.$2 name=roundtrip
  [[ $1 == pool ]] && name=threadpool_roundtrip
  UV_THREADPOOL_SIZE=1 valgrind --tool=callgrind --fair-sched=yes --separate-threads=yes \
    --collect-atstart=no --toggle-collect=uvaio_bench_measured \
    --dump-instr=yes --compress-pos=no --compress-strings=no \
    --callgrind-out-file="$out" \
    "$bench" --only "$name" --side "$1" --ops "$2" --rounds 1 --no-warmup --no-asyncio \
    >"$work/stdout" 2>"$work/valgrind.log" || { cat "$work/valgrind.log" >&2; exit 1; }
  if [[ ! -f $out-01 ]] || ! grep -q "^$name " "$work/stdout"; then
    echo "callgrind_roundtrip.sh: side $1 did not run (ThreadPoolExecutor not built?)" >&2
    exit 1
  fi
  count "$out-01"
  rm -f "$out" "$out"-*
}

echo "callgrind roundtrip: loop-thread instructions per op = (I(2N) - I(N)) / N, N=$N, busy-wait excluded"
printf '%-4s' run
for side in $SIDES; do printf ' %14s %10s' "$side" "(spin)"; done
[[ " $SIDES " == *" raw "* ]] && for side in $SIDES; do [[ $side != raw ]] && printf ' %12s' "$side-raw"; done
echo
declare -A all
for ((r = 1; r <= REPEATS; r++)); do
  printf '%-4s' "$r"
  declare -A per
  for side in $SIDES; do
    res1=$(run_once "$side" "$N") || exit 1
    res2=$(run_once "$side" $((2 * N))) || exit 1
    read -r i1 b1 <<<"$res1"
    read -r i2 b2 <<<"$res2"
    per[$side]=$(( ((i2 - b2) - (i1 - b1)) / N ))
    spin=$(( b2 / (2 * N) ))
    all[$side]="${all[$side]:-} ${per[$side]}"
    printf ' %14s %10s' "${per[$side]}" "$spin"
  done
  if [[ -n ${per[raw]:-} ]]; then
    for side in $SIDES; do [[ $side != raw ]] && printf ' %12s' $(( per[$side] - per[raw] )); done
  fi
  echo
done
for side in $SIDES; do
  # shellcheck disable=SC2086  # word splitting of the list is wanted
  read -r lo hi < <(printf '%s\n' ${all[$side]} | sort -n | sed -n '1p;$p' | paste -sd' ')
  echo "$side: $lo .. $hi instructions per op (spread $((hi - lo)))"
done
echo "(spin) = busy-wait instructions per op excluded from the 2N run (libuv's uv__async_io spin, sched_yield)"
