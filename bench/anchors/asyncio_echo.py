#!/usr/bin/env python3
"""Python asyncio TCP echo anchor for bench/Invoke-Bench.ps1 (standard library only).

    python3 asyncio_echo.py roundtrip <count>
    python3 asyncio_echo.py clients <clients> <round_trips_per_client>
    python3 asyncio_echo.py server <ready_file>

A child process (multiprocessing.Process) runs an asyncio echo server (asyncio.start_server on
127.0.0.1, port 0) that answers each message with the same message; the parent process is the
measuring side and runs asyncio stream clients (asyncio.open_connection) in one event loop.
Wire: each message is a 4-byte little-endian length followed by the payload (b"ping").
asyncio sets TCP_NODELAY on its TCP sockets, both ends.

roundtrip: one client sends b"ping" and awaits the echo, <count> times after a warm-up of 1000
  round trips; prints {"mode", "messages", "seconds", ...} with messages = round trips.
clients: <clients> connections are opened first; then each client (one coroutine each, all in one
  event loop) does <round_trips_per_client> request/reply round trips, all clients at once; timed
  from the start of the first round trip to the end of the last. Prints messages = all round trips,
  seconds, and errors (replies that were not the request).
server: only the echo server, in this process, for an outside load generator (bench/RawSocket
  `clients`): writes "tcp:<port>" to <ready_file> once it listens, serves until "<ready_file>.done"
  exists, then prints {"mode", "messages", "connections"}.
"""

import asyncio
import json
import multiprocessing as mp
import os
import struct
import sys
import time

ROUND_TRIP_WARM_UP = 1000
HEADER = struct.Struct("<I")
PING = b"ping"


COUNTS = {"messages": 0, "connections": 0}


async def handle_echo(reader, writer):
    COUNTS["connections"] += 1
    try:
        while True:
            header = await reader.readexactly(4)
            (length,) = HEADER.unpack(header)
            payload = await reader.readexactly(length)
            writer.write(header + payload)
            COUNTS["messages"] += 1
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()


async def serve(port_sender, stop_event_reader):
    server = await asyncio.start_server(handle_echo, "127.0.0.1", 0, backlog=2048)
    port_sender.send(server.sockets[0].getsockname()[1])
    port_sender.close()
    loop = asyncio.get_running_loop()
    # The parent closes its end of the pipe when it is done: that ends the server.
    stopped = loop.create_future()
    loop.add_reader(stop_event_reader.fileno(), lambda: stopped.done() or stopped.set_result(None))
    async with server:
        await stopped


def server_main(port_sender, stop_reader, parent_ends):
    for end in parent_ends:   # inherited under fork: close them, or the parent's close is no EOF
        end.close()
    asyncio.run(serve(port_sender, stop_reader))


async def request(reader, writer):
    writer.write(HEADER.pack(len(PING)) + PING)
    (length,) = HEADER.unpack(await reader.readexactly(4))
    return await reader.readexactly(length)


async def round_trips(port, count):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(ROUND_TRIP_WARM_UP):
        await request(reader, writer)
    start = time.perf_counter()
    for _ in range(count):
        reply = await request(reader, writer)
    seconds = time.perf_counter() - start
    writer.close()
    await writer.wait_closed()
    if reply != PING:
        raise RuntimeError("the echo answered %r" % reply)
    return {"messages": count, "seconds": seconds, "errors": 0}


async def many_clients(port, clients, per_client):
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]
    errors = 0

    async def client(reader, writer):
        nonlocal errors
        for _ in range(per_client):
            if await request(reader, writer) != PING:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(r, w) for r, w in connections))
    seconds = time.perf_counter() - start
    for _, writer in connections:
        writer.close()
    return {"messages": clients * per_client, "seconds": seconds, "errors": errors, "clients": clients}


async def serve_until_done(ready_file):
    server = await asyncio.start_server(handle_echo, "127.0.0.1", 0, backlog=2048)
    temporary = "%s.%d.tmp" % (ready_file, os.getpid())
    with open(temporary, "w") as f:
        f.write("tcp:%d" % server.sockets[0].getsockname()[1])
    os.replace(temporary, ready_file)
    deadline = time.monotonic() + 300
    async with server:
        while not os.path.exists(ready_file + ".done"):
            if time.monotonic() > deadline:
                raise RuntimeError("the clients did not finish within 300 s")
            await asyncio.sleep(0.02)
    return dict(COUNTS)


def main(argv):
    if len(argv) == 3 and argv[1] == "server":
        result = asyncio.run(serve_until_done(argv[2]))
        result["mode"] = "server"
        print(json.dumps(result))
        return 0
    if len(argv) == 3 and argv[1] == "roundtrip":
        run = lambda port: round_trips(port, int(argv[2]))
    elif len(argv) == 4 and argv[1] == "clients":
        run = lambda port: many_clients(port, int(argv[2]), int(argv[3]))
    else:
        print("usage: asyncio_echo.py roundtrip <count> | clients <clients> <round_trips_per_client> | server <ready_file>", file=sys.stderr)
        return 2

    port_receiver, port_sender = mp.Pipe(duplex=False)
    stop_reader, stop_writer = mp.Pipe(duplex=False)
    child = mp.Process(target=server_main, args=(port_sender, stop_reader, (port_receiver, stop_writer)))
    child.start()
    port_sender.close()
    stop_reader.close()
    port = port_receiver.recv()
    try:
        result = asyncio.run(run(port))
    finally:
        stop_writer.close()   # the server sees EOF and stops
        child.join(30)
    if child.exitcode != 0:
        raise RuntimeError("server exited with %s" % child.exitcode)
    result["mode"] = argv[1]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
