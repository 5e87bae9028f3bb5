"""A RabbitMQ peer for the interop tests, with Debian's python3-pika.

    queue_peer.py publish URI QUEUE     publishes three messages a Python program would send
    queue_peer.py consume URI QUEUE N   prints N messages as JSON lines: content type, delivery mode, body

The queue is declared as Connect-IpcQueue declares it: durable, no arguments.
"""
import json
import sys

import pika


def main():
    command, uri, queue = sys.argv[1:4]
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True)
    if command == 'publish':
        channel.confirm_delivery()
        persistent = pika.spec.PERSISTENT_DELIVERY_MODE
        channel.basic_publish('', queue, 'hello from python',
                              pika.BasicProperties(content_type='text/plain', delivery_mode=persistent))
        channel.basic_publish('', queue, json.dumps({'lang': 'python', 'n': 1}),
                              pika.BasicProperties(content_type='application/json', delivery_mode=persistent))
        # What most clients send by default: no content type at all.
        channel.basic_publish('', queue, 'no content type'.encode('utf-8'))
        print('published', flush=True)
    elif command == 'consume':
        wanted = int(sys.argv[4])
        got = 0
        for method, properties, body in channel.consume(queue, inactivity_timeout=60):
            if method is None:
                print(json.dumps({'error': 'timed out'}), flush=True)
                break
            print(json.dumps({'content_type': properties.content_type,
                              'delivery_mode': properties.delivery_mode,
                              'body': body.decode('utf-8', errors='replace')}), flush=True)
            channel.basic_ack(method.delivery_tag)
            got += 1
            if got == wanted:
                break
        channel.cancel()
    connection.close()


if __name__ == '__main__':
    main()
