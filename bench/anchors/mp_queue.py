#!/usr/bin/env python3
"""multiprocessing.Queue anchor for bench/Invoke-Bench.ps1 (shared memory queue row).

    python3 mp_queue.py <count>

A child process (multiprocessing.Process) builds <count> 16-character strings, then puts each one on
a multiprocessing.Queue; the parent takes them with get(). Prints one JSON line:
{"mode": "strings", "messages": ..., "seconds": ..., "bytes": ..., "start_method": ...}.

Timed by the receiving parent from the moment it has taken the first message to the moment it has
taken the last (child start-up and data preparation are outside the measurement), as the other
one-way rows are.
"""

import json
import multiprocessing as mp
import sys
import time


def send_strings(queue, count):
    messages = ["msg-%012d" % i for i in range(count)]  # 16 characters each
    for message in messages:
        queue.put(message)
    queue.close()
    queue.join_thread()


def receive_strings(queue, count):
    first = queue.get()
    start = time.perf_counter()
    characters = len(first)
    for _ in range(count - 1):
        characters += len(queue.get())
    seconds = time.perf_counter() - start
    if characters != 16 * count:
        raise RuntimeError("expected %d 16-character strings, got %d characters" % (count, characters))
    return count - 1, seconds, 16 * (count - 1)


def main(argv):
    if len(argv) != 2:
        print("usage: mp_queue.py <count>", file=sys.stderr)
        return 2
    count = int(argv[1])
    queue = mp.Queue()
    child = mp.Process(target=send_strings, args=(queue, count))
    child.start()
    messages, seconds, total_bytes = receive_strings(queue, count)
    child.join()
    if child.exitcode != 0:
        raise RuntimeError("child exited with %s" % child.exitcode)
    print(json.dumps({
        "mode": "strings",
        "messages": messages,
        "seconds": seconds,
        "bytes": total_bytes,
        "start_method": mp.get_start_method(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
