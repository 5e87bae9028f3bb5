#!/usr/bin/env python3
"""multiprocessing.shared_memory anchor for bench/Invoke-Bench.ps1 (1 MiB handoff row).

    python3 mp_shared_memory.py <count>

A 1 MiB handoff through shared memory, the way a Python program does it with the standard library: a
SharedMemory block of SLOTS slots of 1 MiB and two multiprocessing.Semaphores (free slots, filled
slots), a bounded buffer. A child process (the writer) waits for a free slot, writes its 1 MiB
payload into it (shm.buf[slot] = payload) and posts "filled"; the parent (the reader) waits for a
filled slot, copies it out into a new bytes object (bytes(shm.buf[slot])) and posts "free". Prints
one JSON line: {"mode": "handoff", "messages": ..., "seconds": ..., "bytes": ..., "slots": ...}.

Timed by the reader from the moment it has copied out the first message to the moment it has copied
out the last, as the other one-way rows are.
"""

import json
import multiprocessing as mp
import sys
import time
from multiprocessing import shared_memory

PAYLOAD_SIZE = 1024 * 1024
SLOTS = 4


def write(name, free, filled, count):
    shm = shared_memory.SharedMemory(name=name)
    payload = bytes(range(256)) * (PAYLOAD_SIZE // 256)
    try:
        for i in range(count):
            free.acquire()
            offset = (i % SLOTS) * PAYLOAD_SIZE
            shm.buf[offset:offset + PAYLOAD_SIZE] = payload
            filled.release()
    finally:
        shm.close()


def read(shm, free, filled, count):
    total = 0
    start = None
    for i in range(count):
        filled.acquire()
        offset = (i % SLOTS) * PAYLOAD_SIZE
        message = bytes(shm.buf[offset:offset + PAYLOAD_SIZE])
        free.release()
        if start is None:
            start = time.perf_counter()
        else:
            total += len(message)
    seconds = time.perf_counter() - start
    if total != PAYLOAD_SIZE * (count - 1):
        raise RuntimeError("copied out %d bytes, expected %d" % (total, PAYLOAD_SIZE * (count - 1)))
    return count - 1, seconds, total


def main(argv):
    if len(argv) != 2:
        print("usage: mp_shared_memory.py <count>", file=sys.stderr)
        return 2
    count = int(argv[1])
    shm = shared_memory.SharedMemory(create=True, size=SLOTS * PAYLOAD_SIZE)
    try:
        free = mp.Semaphore(SLOTS)
        filled = mp.Semaphore(0)
        child = mp.Process(target=write, args=(shm.name, free, filled, count))
        child.start()
        messages, seconds, total_bytes = read(shm, free, filled, count)
        child.join()
        if child.exitcode != 0:
            raise RuntimeError("child exited with %s" % child.exitcode)
    finally:
        shm.close()
        shm.unlink()
    print(json.dumps({
        "mode": "handoff",
        "messages": messages,
        "seconds": seconds,
        "bytes": total_bytes,
        "slots": SLOTS,
        "start_method": mp.get_start_method(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
