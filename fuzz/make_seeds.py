#!/usr/bin/env python3
"""Writes the seed corpus of the scheduler fuzzer to fuzz/corpus/ (deterministic).

Each seed is a byte program for fuzz/scheduler_fuzz.cpp (its header comment
describes the encoding): a flags byte, then opcodes with their operands.
Together the seeds use every opcode and every body kind, so the fuzzer starts
from inputs that reach each part of the scheduler. Run it again after changing
the encoding; it removes the seeds it no longer writes.

    python3 fuzz/make_seeds.py [OUTPUT_DIR]    (default: fuzz/corpus beside this script)
"""

import os
import sys

# Opcodes (scheduler_fuzz.cpp).
CALL_SOON, CALL_LATER, CANCEL_HANDLE, CREATE_TASK, CANCEL_TASK, AWAIT_TASK = 0, 1, 2, 3, 4, 5
TO_THREAD, GATHER, WAIT_FOR, TASK_GROUP, CLOSE, SLEEP, YIELD = 6, 7, 8, 9, 10, 11, 12

# Body kinds.
RETURN_AFTER_YIELDS, RETURN_AFTER_SLEEP, THROW_AFTER_YIELDS = 0, 1, 2
TO_THREAD_BODY, AWAIT_EARLIER_TASK, THROW_AFTER_SLEEP = 3, 4, 5

DRAIN, LEAVE_PENDING = 0, 1


def task(kind, param):
    return [CREATE_TASK, kind, param]


SEEDS = {
    "call_soon_fifo": [DRAIN, CALL_SOON, 0, CALL_SOON, 0, CALL_SOON, 2, CALL_SOON, 0, YIELD],
    "call_soon_throws": [DRAIN, CALL_SOON, 1, CALL_SOON, 3, CALL_SOON, 0],
    "call_later_order": [DRAIN, CALL_LATER, 0, 3, CALL_LATER, 0, 1, CALL_LATER, 0, 1, CALL_LATER, 0, 0,
                         CALL_LATER, 2, 2],
    "call_later_throws": [DRAIN, CALL_LATER, 1, 1, CALL_LATER, 0, 0, SLEEP, 2],
    "cancel_handles": [DRAIN, CALL_SOON, 0, CALL_LATER, 0, 2, CALL_SOON, 0, CANCEL_HANDLE, 0,
                       CANCEL_HANDLE, 1, YIELD, CANCEL_HANDLE, 2],
    "tasks_each_kind": [DRAIN] + task(0, 2) + task(1, 1) + task(2, 1) + task(3, 5) + task(4, 0) + task(5, 1)
    + [AWAIT_TASK, 0, AWAIT_TASK, 4, AWAIT_TASK, 2],
    "cancel_task_early": [DRAIN] + task(0, 3) + [CANCEL_TASK, 0, AWAIT_TASK, 0],
    "cancel_task_later": [DRAIN] + task(1, 3) + task(4, 0) + [YIELD, CANCEL_TASK, 0, AWAIT_TASK, 1],
    "cancel_after_done": [DRAIN] + task(0, 0) + [AWAIT_TASK, 0, CANCEL_TASK, 0],
    "timer_cancels_task": [DRAIN] + task(1, 3) + [CALL_LATER, 4 | (0 << 3), 1, AWAIT_TASK, 0],
    "to_thread": [DRAIN, TO_THREAD, 7, 4, TO_THREAD, 9, 0, TO_THREAD, 3, 28],
    "to_thread_cancelled": [DRAIN, TO_THREAD, 5, 1, TO_THREAD, 6, 3],
    "to_thread_in_tasks": [DRAIN] + task(3, 10) + task(3, 20) + [CANCEL_TASK, 1, AWAIT_TASK, 0],
    "gather_bodies": [DRAIN, GATHER, 2, 0, 0, 1, 1, 1, 3, 4, 0, 2],
    "gather_bodies_fail": [DRAIN, GATHER, 3, 0, 0, 1, 2, 0, 1, 3, 5, 1],
    "gather_tasks": [DRAIN] + task(0, 1) + task(1, 1) + task(2, 0) + [GATHER, 1, 1, 0, 1, GATHER, 2, 1, 2, 0, 1],
    "wait_for_body": [DRAIN, WAIT_FOR, 0, 3, 0, 1, WAIT_FOR, 0, 1, 1, 3, WAIT_FOR, 0, 0, 0, 1, WAIT_FOR, 0, 4, 2, 0],
    "wait_for_task": [DRAIN] + task(1, 3) + task(0, 1) + [WAIT_FOR, 1, 0, 0, WAIT_FOR, 1, 1, 1, WAIT_FOR, 1, 4, 0],
    "task_group_ok": [DRAIN, TASK_GROUP, 3, 0, 1, 1, 1, 3, 2],
    "task_group_fail": [DRAIN, TASK_GROUP, 3, 0, 2, 2, 0, 5, 2, TASK_GROUP, 2, 1, 3, 2, 1],
    "task_group_awaits_task": [DRAIN] + task(2, 1) + [TASK_GROUP, 2, 4, 0, 1, 2],
    "close_refused": [DRAIN, CALL_SOON, 0, CLOSE, YIELD, CLOSE],
    "sleep_and_yield": [DRAIN, SLEEP, 1, YIELD, SLEEP, 0, YIELD],
    "leave_pending": [LEAVE_PENDING] + task(1, 3) + task(4, 0) + task(3, 15) + [CALL_SOON, 0, CALL_LATER, 0, 3,
                                                                               TO_THREAD, 2, 1],
    "leave_pending_cancelled": [LEAVE_PENDING] + task(0, 3) + [CANCEL_TASK, 0, CALL_SOON, 2, CALL_LATER, 6, 0],
    "mixed": [DRAIN] + task(1, 2) + task(2, 0) + [CALL_LATER, 4 | (1 << 3), 1, CALL_SOON, 2, GATHER, 1, 1, 0,
                                                  WAIT_FOR, 1, 2, 1, TASK_GROUP, 1, 4, 1, TO_THREAD, 1, 2,
                                                  CANCEL_HANDLE, 0, AWAIT_TASK, 1],
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    os.makedirs(out, exist_ok=True)
    wanted = set()
    for name, program in sorted(SEEDS.items()):
        wanted.add(name)
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(program))
    for stale in sorted(set(os.listdir(out)) - wanted):
        os.remove(os.path.join(out, stale))
    print(f"make_seeds: wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
