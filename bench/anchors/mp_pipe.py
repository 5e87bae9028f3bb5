#!/usr/bin/env python3
"""multiprocessing.Pipe anchor for bench/Invoke-Bench.ps1.

    python3 mp_pipe.py <strings|bytes|roundtrip> <count>

The parent process is the measuring side; a child process (multiprocessing.Process) is the sender
(strings, bytes) or the echo (roundtrip). Prints one JSON line:
{"mode": ..., "messages": ..., "seconds": ..., "bytes": ..., "start_method": ...}.

One-way modes are timed by the receiving parent from the moment it has taken the first message to
the moment it has taken the last (child start-up and data preparation are outside the measurement).
Round trip: the parent sends "ping" with Connection.send and waits for the echo with recv, after a
warm-up of 1000 round trips.
"""

import json
import multiprocessing as mp
import sys
import time

BYTES_PAYLOAD_SIZE = 1024 * 1024
ROUND_TRIP_WARM_UP = 1000


def send_strings(conn, count):
    messages = ["msg-%012d" % i for i in range(count)]  # 16 characters each
    for message in messages:
        conn.send(message)
    conn.close()


def send_bytes(conn, count):
    payload = bytes(range(256)) * (BYTES_PAYLOAD_SIZE // 256)
    for _ in range(count):
        conn.send_bytes(payload)
    conn.close()


def echo(conn):
    while True:
        message = conn.recv()
        if message is None:
            break
        conn.send(message)
    conn.close()


def receive_strings(conn, count):
    first = conn.recv()
    start = time.perf_counter()
    characters = len(first)
    for _ in range(count - 1):
        characters += len(conn.recv())
    seconds = time.perf_counter() - start
    if characters != 16 * count:
        raise RuntimeError("expected %d 16-character strings, got %d characters" % (count, characters))
    return count - 1, seconds, 16 * (count - 1)


def receive_bytes(conn, count):
    conn.recv_bytes()
    start = time.perf_counter()
    total = 0
    for _ in range(count - 1):
        total += len(conn.recv_bytes())
    seconds = time.perf_counter() - start
    return count - 1, seconds, total


def ping_pong(conn, count):
    for _ in range(ROUND_TRIP_WARM_UP):
        conn.send("ping")
        conn.recv()
    start = time.perf_counter()
    for _ in range(count):
        conn.send("ping")
        conn.recv()
    seconds = time.perf_counter() - start
    conn.send(None)
    return count, seconds, 0


MODES = {
    "strings": (send_strings, receive_strings),
    "bytes": (send_bytes, receive_bytes),
    "roundtrip": (echo, ping_pong),
}


def main(argv):
    if len(argv) != 3 or argv[1] not in MODES:
        print("usage: mp_pipe.py <%s> <count>" % "|".join(MODES), file=sys.stderr)
        return 2
    mode, count = argv[1], int(argv[2])
    child_main, measure = MODES[mode]

    parent_end, child_end = mp.Pipe()
    child = mp.Process(target=child_main, args=(child_end, count) if mode != "roundtrip" else (child_end,))
    child.start()
    child_end.close()
    messages, seconds, total_bytes = measure(parent_end, count)
    child.join()
    if child.exitcode != 0:
        raise RuntimeError("child exited with %s" % child.exitcode)

    print(json.dumps({
        "mode": mode,
        "messages": messages,
        "seconds": seconds,
        "bytes": total_bytes,
        "start_method": mp.get_start_method(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
