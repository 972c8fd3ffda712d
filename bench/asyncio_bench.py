#!/usr/bin/env python3
"""asyncio's side of uvaio's benchmark suite (bench/uvaio_bench.cpp runs it).

The same workloads as uvaio_bench's roundtrip, fanout, spawn, sleep0, timers
and threadsafe, written the way an asyncio program writes them, on the default
event loop of this python3. Prints a header line, then one line per workload:

    name  asyncio_ns_per_op  ops

ns/op is the median of --rounds runs on one event loop (after a warm-up at a
tenth of the size); timers reports process CPU time per sleep, as uvaio_bench
does (its wall time is bounded by the 1 s sleeps). The sizes are smaller than
uvaio_bench's (Python is slower; the figure is per operation): ops tells them.
"""

import argparse
import asyncio
import random
import statistics
import sys
import threading
import time

# Operations per round at --scale 1.
SIZES = {
    "roundtrip": 20_000,
    "fanout": 40_000,  # batches of 10,000
    "spawn": 200_000,
    "sleep0": 200_000,
    "timers": 200_000,
    "threadsafe": 200_000,
}
FANOUT_WIDTH = 10_000


def noop():
    pass


async def roundtrip(n):
    """await one no-op asyncio.to_thread after the other."""
    start = time.perf_counter_ns()
    for _ in range(n):
        await asyncio.to_thread(noop)
    return (time.perf_counter_ns() - start) / n


async def fanout(n):
    """asyncio.gather of 10,000 asyncio.to_thread calls, n / 10,000 times."""
    batches = max(1, n // FANOUT_WIDTH)
    start = time.perf_counter_ns()
    for _ in range(batches):
        await asyncio.gather(*[asyncio.to_thread(noop) for _ in range(FANOUT_WIDTH)])
    return (time.perf_counter_ns() - start) / (batches * FANOUT_WIDTH)


async def trivial():
    pass


async def spawn(n):
    """create a task running a trivial coroutine and await it, n times."""
    start = time.perf_counter_ns()
    for _ in range(n):
        await asyncio.create_task(trivial())
    return (time.perf_counter_ns() - start) / n


async def sleep0(n):
    """n asyncio.sleep(0) switches in one task."""
    start = time.perf_counter_ns()
    for _ in range(n):
        await asyncio.sleep(0)
    return (time.perf_counter_ns() - start) / n


async def timers(n):
    """n concurrent sleeps of random length in [0, 1) s, all fired; CPU ns per sleep."""
    loop = asyncio.get_running_loop()
    rng = random.Random(12345)
    delays = [rng.randrange(1_000_000) / 1e6 for _ in range(n)]
    all_fired = loop.create_future()
    remaining = n

    async def sleeper(delay):
        nonlocal remaining
        await asyncio.sleep(delay)
        remaining -= 1
        if remaining == 0:
            all_fired.set_result(None)

    start = time.process_time_ns()
    tasks = [loop.create_task(sleeper(d)) for d in delays]  # asyncio holds tasks weakly
    await all_fired
    took = time.process_time_ns() - start
    del tasks
    return took / n


async def threadsafe(n):
    """another thread calls loop.call_soon_threadsafe(cb) n times."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = 0

    def callback():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    def producer():
        for _ in range(n):
            loop.call_soon_threadsafe(callback)

    start = time.perf_counter_ns()
    thread = threading.Thread(target=producer)
    thread.start()
    await done
    took = time.perf_counter_ns() - start
    thread.join()
    return took / n


WORKLOADS = {
    "roundtrip": roundtrip,
    "fanout": fanout,
    "spawn": spawn,
    "sleep0": sleep0,
    "timers": timers,
    "threadsafe": threadsafe,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(WORKLOADS))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    for name in names:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}")

    print(f"{'name':22} {'asyncio_ns_per_op':>18} {'ops':>10}", flush=True)
    loop = asyncio.new_event_loop()
    try:
        for name in names:
            n = max(1, round(SIZES[name] * args.scale))
            if name == "fanout":
                n = max(1, n // FANOUT_WIDTH) * FANOUT_WIDTH
            fn = WORKLOADS[name]
            loop.run_until_complete(fn(max(1, n // 10)))
            samples = []
            for r in range(max(1, args.rounds)):
                samples.append(loop.run_until_complete(fn(n)))
                print(f"[asyncio {name}] round {r + 1}/{args.rounds} n={n} ns/op: {samples[-1]:.0f}", file=sys.stderr)
            print(f"{name:22} {statistics.median(samples):18.1f} {n:10d}", flush=True)
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    print(f"# python {sys.version.split()[0]}, asyncio default event loop {type(loop).__name__}")


if __name__ == "__main__":
    main()
