#!/usr/bin/env python3
"""Many PsIpc clients in one asyncio process: the peer of tests/Pester/Scenario.Sockets.Scale.Tests.ps1.

    python3 scale_clients.py PORT CLIENTS ROUNDS IDLE_PERCENT SLOW_PERCENT

Raises this process's soft limit of open files to its hard limit (CLIENTS sockets need it; a plain `ulimit -n`
is often 1024), connects CLIENTS clients to 127.0.0.1:PORT (at most 64 connects in flight; each sends its Hello and
reads the server's), then, all at once: IDLE_PERCENT of them stay silent until the others are done and then do one
round trip; SLOW_PERCENT send each request in two writes 0.2 s apart and read its reply 0.2 s later; the rest do
ROUNDS round trips at full speed. A round trip is a Text frame "c<i> r<k>", answered by the server's script block
with "ACK: c<i> r<k>". Every client then sends Goodbye and reads to the server's end of stream. Prints one JSON line:
{"connected", "trips", "errors", "firstError"}. Standard library only.
"""
import asyncio
import json
import os
import resource
import struct
import sys

HEADER = struct.Struct("<IB")
HELLO = struct.Struct("<5sBBBII")
TEXT, HELLO_TYPE, GOODBYE, ERROR = 0x10, 0x01, 0x02, 0x03
TIMEOUT = 30


def frame(kind, payload):
    return HEADER.pack(len(payload), kind) + payload


async def read_frame(reader):
    length, kind = HEADER.unpack(await reader.readexactly(HEADER.size))
    return kind, await reader.readexactly(length)


class Stats:
    def __init__(self):
        self.trips = 0
        self.errors = 0
        self.first_error = None

    def fail(self, what):
        self.errors += 1
        if self.first_error is None:
            self.first_error = what


async def connect(port, stats, gate):
    async with gate:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        writer.write(frame(HELLO_TYPE, HELLO.pack(b"PSIPC", 1, 0, 0, os.getpid(), 1024 * 1024)))
        kind, _ = await asyncio.wait_for(read_frame(reader), TIMEOUT)
        if kind != HELLO_TYPE:
            raise RuntimeError(f"the server answered the Hello with frame type 0x{kind:02x}")
        return reader, writer


async def trips(index, reader, writer, rounds, slow, stats):
    try:
        for r in range(rounds):
            text = f"c{index} r{r}".encode()
            request = frame(TEXT, text)
            if slow:
                writer.write(request[:4])
                await writer.drain()
                await asyncio.sleep(0.2)
                writer.write(request[4:])
                await writer.drain()
                await asyncio.sleep(0.2)
            else:
                writer.write(request)
            kind, payload = await asyncio.wait_for(read_frame(reader), TIMEOUT)
            if kind != TEXT or payload != b"ACK: " + text:
                raise RuntimeError(f"client {index}: the reply to {text!r} was type 0x{kind:02x} {payload[:80]!r}")
            stats.trips += 1
    except Exception as e:  # noqa: BLE001 - every failure is counted and reported
        stats.fail(f"client {index}: {type(e).__name__}: {e}")


async def leave(reader, writer):
    try:
        writer.write(frame(GOODBYE, b""))
        await writer.drain()
        writer.write_eof()
        while await asyncio.wait_for(reader.read(4096), TIMEOUT):
            pass
    except Exception:  # noqa: BLE001 - the server may close first: nothing to report
        pass
    writer.close()


async def main(port, clients, rounds, idle_percent, slow_percent):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stats = Stats()
    gate = asyncio.Semaphore(64)
    results = await asyncio.gather(*(connect(port, stats, gate) for _ in range(clients)), return_exceptions=True)
    peers = []
    for i, result in enumerate(results):
        if isinstance(result, BaseException):
            stats.fail(f"connect {i}: {type(result).__name__}: {result}")
        else:
            peers.append((i, result))
    idle = [(i, p) for i, p in peers if i % 100 < idle_percent]
    slow = [(i, p) for i, p in peers if idle_percent <= i % 100 < idle_percent + slow_percent]
    active = [(i, p) for i, p in peers if i % 100 >= idle_percent + slow_percent]
    await asyncio.gather(*(trips(i, r, w, rounds, False, stats) for i, (r, w) in active),
                         *(trips(i, r, w, rounds, True, stats) for i, (r, w) in slow))
    await asyncio.gather(*(trips(i, r, w, 1, False, stats) for i, (r, w) in idle))
    await asyncio.gather(*(leave(r, w) for _, (r, w) in peers))
    print(json.dumps({"connected": len(peers), "trips": stats.trips, "errors": stats.errors, "firstError": stats.first_error}))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(*(int(a) for a in sys.argv[1:])))
