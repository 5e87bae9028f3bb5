using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace PsIpc.Amqp
{
    /// <summary>A delivery not yet acknowledged: its tag on the channel (the client keeps tags unique across reconnects).</summary>
    internal sealed class DeliveryToken
    {
        public DeliveryToken(ulong tag, long generation, bool redelivered)
        {
            Tag = tag;
            Generation = generation;
            Redelivered = redelivered;
        }

        public ulong Tag { get; }

        /// <summary>The connection it came on: a tag of an earlier one is void (the broker requeued it).</summary>
        public long Generation { get; }

        public bool Redelivered { get; }
    }

    /// <summary>
    /// The deliveries the broker pushed to this consumer (at most -Prefetch unacknowledged ones), waiting
    /// for Receive. The client's dispatcher thread adds; the caller's thread takes. When the connection
    /// drops, what is waiting here is forgotten: the broker requeues it and delivers it again.
    /// </summary>
    internal sealed class QueueConsumer : AsyncDefaultBasicConsumer
    {
        public delegate IpcMessage MessageFactory(MessageFormat format, byte[] payload, DeliveryToken token);

        private readonly object _gate = new object();
        private readonly Queue<IpcMessage> _ready = new Queue<IpcMessage>();
        private readonly MessageFactory _factory;
        private readonly string _target;
        private long _generation;
        // The dispatcher's last content type, parsed (only the client's dispatcher thread uses these).
        private string? _lastContentType;
        private ContentTypes.MediaKind _lastKind = ContentTypes.Classify(null, out _);
        private string? _lastCharset;
        private IpcException? _fatal;

        public QueueConsumer(IChannel channel, MessageFactory factory, string target) : base(channel)
        {
            _factory = factory;
            _target = target;
            channel.ChannelShutdownAsync += OnShutdown;
        }

        public long Generation
        {
            get { lock (_gate) return _generation; }
        }

        /// <summary>Waiting deliveries (taken by nobody yet).</summary>
        public int Ready
        {
            get { lock (_gate) return _ready.Count; }
        }

        /// <summary>Up to <paramref name="max"/> deliveries, waiting for the first until the deadline (0 then).</summary>
        public int Take(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                while (_ready.Count == 0)
                {
                    if (_fatal != null) throw _fatal;
                    if (!Waits.Wait(_gate, deadline, cancellationToken)) return 0;
                }
                int n = Math.Min(max, _ready.Count);
                for (int i = 0; i < n; i++) into.Add(_ready.Dequeue());
                return n;
            }
        }

        public override Task HandleBasicDeliverAsync(string consumerTag, ulong deliveryTag, bool redelivered, string exchange,
            string routingKey, IReadOnlyBasicProperties properties, ReadOnlyMemory<byte> body, CancellationToken cancellationToken = default)
        {
            // The body's memory belongs to the client once this returns.
            byte[] payload = body.ToArray();
            string? contentType = properties.ContentType;
            if (!string.Equals(contentType, _lastContentType, StringComparison.Ordinal))
            {
                // A stream's messages mostly share one content type: parse it once.
                _lastKind = ContentTypes.Classify(contentType, out _lastCharset);
                _lastContentType = contentType;
            }
            MessageFormat format = ContentTypes.Parse(_lastKind, _lastCharset, properties.ContentEncoding, ref payload);
            lock (_gate)
            {
                _ready.Enqueue(_factory(format, payload, new DeliveryToken(deliveryTag, _generation, redelivered)));
                if (_ready.Count == 1) Monitor.PulseAll(_gate); // Take waits only while nothing is ready
            }
            return Task.CompletedTask;
        }

        public override Task HandleBasicCancelAsync(string consumerTag, CancellationToken cancellationToken = default)
        {
            // The broker cancelled us: the queue was deleted (or, for a quorum queue, lost its leader).
            lock (_gate)
            {
                _fatal = new IpcException(IpcErrorKind.QueueNotFound,
                    $"The broker stopped delivering from '{_target}': the queue was deleted.", _target);
                Monitor.PulseAll(_gate);
            }
            return base.HandleBasicCancelAsync(consumerTag, cancellationToken);
        }

        private Task OnShutdown(object sender, ShutdownEventArgs reason)
        {
            lock (_gate)
            {
                _generation++;
                _ready.Clear();
                if (reason.Initiator == ShutdownInitiator.Peer && AmqpErrors.IsChannelError(reason.ReplyCode))
                {
                    _fatal = AmqpErrors.FromShutdown(reason, $"Receiving from '{_target}' failed", _target);
                }
                Monitor.PulseAll(_gate);
            }
            return Task.CompletedTask;
        }
    }
}
