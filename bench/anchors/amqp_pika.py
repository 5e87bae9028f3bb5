#!/usr/bin/env python3
"""RabbitMQ anchor for bench/Invoke-Bench.ps1 (queue rows, issue 10): Debian's python3-pika.

    amqp_pika.py produce <uri> <queue> <count> confirm|noconfirm
    amqp_pika.py consume <uri> <queue> <count> <prefetch>

Both sides use pika.BlockingConnection and declare the queue as Connect-IpcQueue does (durable, no
arguments). The traffic is the PsIpc rows' traffic: <count> 16-character strings "msg-000000000000",
... published to the default exchange with the queue's name as routing key, persistent
(delivery_mode 2) and content_type text/plain; charset=utf-8.

produce: builds its strings first, connects, then (clock starts) turns on publisher confirms with
confirm_delivery() or not, publishes every message with basic_publish (with confirms on, pika waits
for each message's confirm before basic_publish returns), closes the connection (clock stops).

consume: connects, sets basic_qos(prefetch_count=<prefetch>) and consumes with basic_consume
(auto_ack off) and start_consuming; the callback acks each message with basic_ack once it has it.
Timed from the first message taken to the last (so count-1 messages are timed), as every one-way row.

Prints one JSON line: {"mode": ..., "messages": ..., "seconds": ..., "bytes": ..., "cpuSeconds": ...}, where
cpuSeconds is the process's CPU time (user + system, all threads) over the timed span.
"""

import json
import resource
import sys
import time

import pika

CONTENT_TYPE = "text/plain; charset=utf-8"


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def connect(uri):
    parameters = pika.URLParameters(uri)
    parameters.heartbeat = 0  # a loaded machine must not miss heartbeats in the middle of a run
    return pika.BlockingConnection(parameters)


def produce(uri, queue, count, confirm):
    messages = [("msg-%012d" % i).encode("utf-8") for i in range(count)]  # 16 bytes each
    connection = connect(uri)
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True)
    properties = pika.BasicProperties(content_type=CONTENT_TYPE,
                                      delivery_mode=pika.spec.PERSISTENT_DELIVERY_MODE)
    start = time.perf_counter()
    cpu = cpu_seconds()
    if confirm:
        channel.confirm_delivery()
    publish = channel.basic_publish
    for body in messages:
        publish("", queue, body, properties)
    connection.close()
    seconds = time.perf_counter() - start
    return {"mode": "produce-" + ("confirm" if confirm else "noconfirm"), "messages": count,
            "seconds": seconds, "bytes": 16 * count, "cpuSeconds": cpu_seconds() - cpu}


def consume(uri, queue, count, prefetch):
    connection = connect(uri)
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True)
    channel.basic_qos(prefetch_count=prefetch)
    state = {"taken": 0, "characters": 0, "start": 0.0, "end": 0.0, "cpu": 0.0}

    def on_message(ch, method, properties, body):
        if state["taken"] == 0:
            state["start"] = time.perf_counter()
            state["cpu"] = cpu_seconds()
        state["characters"] += len(body)
        ch.basic_ack(delivery_tag=method.delivery_tag)
        state["taken"] += 1
        if state["taken"] == count:
            state["end"] = time.perf_counter()
            state["cpu"] = cpu_seconds() - state["cpu"]
            ch.stop_consuming()

    channel.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=False)
    channel.start_consuming()
    connection.close()
    if state["characters"] != 16 * count:
        raise RuntimeError("expected %d 16-character messages, got %d characters" % (count, state["characters"]))
    return {"mode": "consume", "messages": count - 1, "seconds": state["end"] - state["start"],
            "bytes": 16 * (count - 1), "prefetch": prefetch, "cpuSeconds": state["cpu"]}


def main(argv):
    if len(argv) != 6 or argv[1] not in ("produce", "consume"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, uri, queue, count = argv[1], argv[2], argv[3], int(argv[4])
    if mode == "produce":
        if argv[5] not in ("confirm", "noconfirm"):
            print("produce takes confirm or noconfirm", file=sys.stderr)
            return 2
        result = produce(uri, queue, count, argv[5] == "confirm")
    else:
        result = consume(uri, queue, count, int(argv[5]))
    result["pika"] = pika.__version__
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
