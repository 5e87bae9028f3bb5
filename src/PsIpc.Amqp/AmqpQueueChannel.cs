using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace PsIpc.Amqp
{
    /// <summary>
    /// A RabbitMQ queue or exchange as a PsIpc channel: Send publishes (persistent, confirmed), Receive
    /// consumes (acknowledged only once the message was written to the pipeline), Close flushes and
    /// disconnects. One connection, recovered by the client when the broker goes away; one channel for
    /// declarations and consuming, one for publishing (a channel error on one does not take the other).
    /// </summary>
    public sealed class AmqpQueueChannel : IpcChannel
    {
        private static readonly TimeSpan ConsumerStartTimeout = TimeSpan.FromSeconds(30);

        private readonly object _gate = new object();
        private readonly AmqpQueueOptions _options;
        private readonly IConnection _connection;
        private readonly IChannel _control;
        private readonly AmqpTopology _topology;
        private readonly string _address;
        private ConfirmingPublisher? _publisher;
        private IChannel? _publishChannel;
        private QueueConsumer? _consumer;
        private Acknowledgements? _acks;
        private string? _consumeQueue;

        private AmqpQueueChannel(string name, AmqpQueueOptions options, IConnection connection, IChannel control, AmqpTopology topology, string address)
            : base(name, ChannelKind.Amqp, ChannelRole.Client, new ChannelOptions { MaxMessageSize = options.MaxMessageSize })
        {
            _options = options;
            _connection = connection;
            _control = control;
            _topology = topology;
            _address = address;
            _consumeQueue = topology.ConsumeQueue;
            // A private subscription queue gets a new name when the client recovers it.
            connection.QueueNameChangedAfterRecoveryAsync += (_, e) =>
            {
                lock (_gate) if (_consumeQueue == e.NameBefore) _consumeQueue = e.NameAfter;
                return System.Threading.Tasks.Task.CompletedTask;
            };
        }

        /// <summary>Connects, declares (or checks) the queue or exchange, and returns the channel.</summary>
        /// <exception cref="IpcException">BrokerUnreachable, AuthenticationFailed, AccessDenied, QueueNotFound, ExchangeNotFound, QueueSettingsConflict, QueueInUse.</exception>
        public static AmqpQueueChannel Connect(AmqpQueueOptions options, Deadline deadline, CancellationToken cancellationToken)
        {
            if (options == null) throw new ArgumentNullException(nameof(options));
            options = options.Clone();
            if (options.Queue == null && options.Exchange == null) throw new ArgumentException("A queue or an exchange is needed.", nameof(options));
            string name = options.Name ?? options.Queue ?? options.Exchange!;
            Uri uri = AmqpConnector.ParseUri(options.Uri, name);
            string clientName = $"PsIpc {name} (pid {System.Diagnostics.Process.GetCurrentProcess().Id})";
            IConnection connection = AmqpConnector.Connect(options, uri, clientName, name, deadline, cancellationToken);
            try
            {
                IChannel control = Waits.Run(t => connection.CreateChannelAsync(cancellationToken: t), AtLeastOneTry(deadline), cancellationToken);
                AmqpTopology topology = AmqpTopology.Declare(control, options, name, AtLeastOneTry(deadline), cancellationToken);
                return new AmqpQueueChannel(name, options, connection, control, topology, topology.Describe(AmqpConnector.Describe(uri)));
            }
            catch (Exception e)
            {
                try { connection.Dispose(); } catch (Exception) { } // the error below is what matters
                if (e is Waits.DeadlineExpired) throw new IpcException(IpcErrorKind.ConnectTimeout, $"The broker did not open a channel for '{name}' in time.", name);
                // The broker closes the connection at the first channel when the virtual host is unknown or not allowed.
                if (e is RabbitMQ.Client.Exceptions.OperationInterruptedException oie && oie.ShutdownReason != null)
                {
                    throw AmqpErrors.FromShutdown(oie.ShutdownReason, $"The broker at {AmqpConnector.Describe(uri)} refused '{name}'", name);
                }
                throw;
            }
        }

        public override ChannelState State =>
            IsClosed ? ChannelState.Closed : _connection.IsOpen ? ChannelState.Connected : ChannelState.Listening;

        /// <summary>The broker, when connected (other producers and consumers are the broker's business).</summary>
        public override int PeerCount => !IsClosed && _connection.IsOpen ? 1 : 0;

        public override string Address => _address;

        /// <summary>A publish-only channel (an exchange without -Queue or -Subscribe) has nothing to receive.</summary>
        public override bool CanReceive => _topology.ConsumeQueue != null;

        /// <summary>The broker checked our credentials, not those of whoever published to the queue.</summary>
        public override bool IsAuthenticated => false;

        /// <summary>Anyone allowed to publish to the queue could send CliXml: only when the user opted in (-AllowCliXml).</summary>
        public override bool AcceptsCliXml => _options.AllowCliXml;

        /// <summary>The queue consumed, the exchange published to, and their settings.</summary>
        public string? Queue => _topology.ConsumeQueue;

        public string? Exchange => _topology.Exchange.Length == 0 ? null : _topology.Exchange;

        public string RoutingKey => _topology.RoutingKey;

        public bool Confirm => _options.Confirm;

        public int Prefetch => _options.Prefetch;

        /// <summary>Messages sent and not yet confirmed by the broker.</summary>
        public int Unconfirmed => _publisher?.Unconfirmed ?? 0;

        /// <summary>Messages sent again after a reconnect, because their confirm never came (each may arrive twice).</summary>
        public long Republished => _publisher?.Republished ?? 0;

        /// <summary>
        /// Publishes the client did not take within 5 s (a full write queue on a connection that stopped moving,
        /// rabbitmq-dotnet-client#1930): each was cancelled and its message kept for the reconnect or the next try.
        /// </summary>
        public long PublishStalls => _publisher?.Stalls ?? 0;

        /// <summary>
        /// False when this channel's sends come back to the queue it consumes (a work queue, or a queue bound to its exchange
        /// with a key that matches its routing key): a request's "reply" would be the request itself.
        /// </summary>
        public override bool CanRequest => base.CanRequest && !_topology.ReceivesOwnSends;

        public override IpcException NotSupportedError(ChannelOperation operation)
        {
            if (operation == ChannelOperation.Receive)
            {
                return new IpcException(IpcErrorKind.OperationNotSupported,
                    $"'{Name}' publishes to the exchange '{_topology.Exchange}' and has no queue to receive from: connect with -Subscribe or -Queue to receive.", Name);
            }
            if (operation == ChannelOperation.Request && _topology.ReceivesOwnSends)
            {
                string route = _topology.Exchange.Length == 0
                    ? $"sends to the queue '{_topology.ConsumeQueue}' and consumes that same queue"
                    : $"consumes the queue '{_topology.ConsumeQueue}', which is bound to the exchange '{_topology.Exchange}' with a key that takes its own sends (routing key '{_topology.RoutingKey}')";
                return new IpcException(IpcErrorKind.OperationNotSupported,
                    $"'{Name}' {route}, so the reply to a request would be the request itself (or a message meant for another consumer). Nothing was sent. " +
                    "For request/reply use two queues, one each way: connect one channel with -Queue to the requests queue and another to the replies " +
                    "queue, then Send-IpcMessage on the first and Receive-IpcMessage on the second; or use a pipe or a socket.", Name);
            }
            return base.NotSupportedError(operation);
        }

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            if (format == MessageFormat.CliXml && !_options.AllowCliXml)
            {
                throw new IpcException(IpcErrorKind.OperationNotSupported,
                    $"'{Name}' does not carry CliXml (every consumer of the queue would get PowerShell XML): send objects with -Format Json, " +
                    "or connect with -AllowCliXml when only PowerShell reads the queue.", Name);
            }
            if (payload.Length > _options.MaxMessageSize)
            {
                throw new IpcException(IpcErrorKind.MessageTooLarge,
                    $"The message is {payload.Length} bytes; '{Name}' takes at most {_options.MaxMessageSize} bytes (-MaxMessageSize; RabbitMQ.Client reads at most 64 MiB, the broker takes at most 128 MiB). Nothing was sent.", Name);
            }
            Publisher(deadline, cancellationToken).Send(ContentTypes.For(format), payload, deadline, cancellationToken);
            CountSent(payload.Length);
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken) =>
            _publisher?.Flush(deadline, cancellationToken);

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            QueueConsumer consumer = Consumer(deadline, cancellationToken);
            // About to wait: the acknowledgements of what the last batches wrote go out now, so that the broker
            // can send more meanwhile. With messages ready they wait for their batch (half the prefetch) or 20 ms.
            if (consumer.Ready == 0) _acks!.Flush();
            int start = into.Count;
            int taken = consumer.Take(into, max, deadline, cancellationToken);
            if (taken > 0)
            {
                long bytes = 0;
                for (int i = start; i < into.Count; i++) bytes += into[i].Size;
                CountReceived(taken, bytes);
            }
            return taken;
        }

        /// <summary>Written to the pipeline: the broker may forget it.</summary>
        public override void Acknowledge(IpcMessage message)
        {
            if (message.DeliveryToken is DeliveryToken token && !IsClosed) _acks?.Ack(token);
        }

        /// <summary>
        /// Taken but not written (Select-Object -First, Ctrl+C): back to the queue (redelivered, flagged so),
        /// for this consumer or another.
        /// </summary>
        public override void ReturnUnreceived(IList<IpcMessage> messages, int start)
        {
            if (messages == null || IsClosed) return;
            for (int i = start; i < messages.Count; i++)
            {
                if (messages[i].DeliveryToken is DeliveryToken token) _acks?.Requeue(token);
            }
        }

        /// <summary>
        /// Could not be decoded: to the dead-letter queue when there is one (-DeadLetterQueue). Without one it
        /// stays unacknowledged, so the broker keeps it and delivers it again once this channel closes:
        /// rejecting without a dead-letter route would delete it.
        /// </summary>
        public override void Reject(IpcMessage message, Exception reason)
        {
            if (!(message.DeliveryToken is DeliveryToken token) || IsClosed) return;
            if (_topology.HasDeadLetterQueue) _acks?.DeadLetter(token);
            else _acks?.Keep(token);
        }

        /// <summary>Whether an undecodable message goes to a dead-letter queue (else it is kept, unacknowledged).</summary>
        public bool HasDeadLetterQueue => _topology.HasDeadLetterQueue;

        protected override void CloseCore(Deadline deadline)
        {
            IpcException? flushError = null;
            try
            {
                _publisher?.Flush(deadline, CancellationToken.None);
            }
            catch (IpcException e)
            {
                flushError = e;
            }
            _publisher?.Dispose();
            _acks?.Dispose(); // the acknowledgements of what was written go out before the channel closes
            // Closing the channels hands whatever is unacknowledged back to the queue.
            Deadline closing = Deadline.Earliest(deadline, Deadline.After(TimeSpan.FromSeconds(10)));
            foreach (IChannel? channel in new[] { _publishChannel, _control })
            {
                if (channel == null) continue;
                try { Waits.Run(t => channel.CloseAsync(t), AtLeastOneTry(closing), CancellationToken.None); }
                catch (Exception) { } // gone already, or the broker is away: the connection close below ends it
            }
            try { Waits.Run(t => _connection.CloseAsync(t), AtLeastOneTry(closing), CancellationToken.None); }
            catch (Exception) { }
            try { _connection.Dispose(); } catch (Exception) { }
            if (flushError != null) throw flushError;
        }

        private ConfirmingPublisher Publisher(Deadline deadline, CancellationToken cancellationToken)
        {
            ConfirmingPublisher? publisher = _publisher;
            if (publisher != null) return publisher;
            lock (_gate)
            {
                if (_publisher != null) return _publisher;
                IChannel channel = OpenChannel(new CreateChannelOptions(_options.Confirm, publisherConfirmationTrackingEnabled: false), deadline, cancellationToken);
                _publishChannel = channel;
                return _publisher = new ConfirmingPublisher(_connection, channel, _options.Confirm, _topology.Exchange, _topology.RoutingKey,
                    _topology.Mandatory, _options.MaxUnconfirmed, _options.PublishTimeout, Name);
            }
        }

        /// <summary>The consumer starts with the first Receive, so a channel that only sends never holds messages.</summary>
        private QueueConsumer Consumer(Deadline deadline, CancellationToken cancellationToken)
        {
            QueueConsumer? consumer = _consumer;
            if (consumer != null) return consumer;
            lock (_gate)
            {
                if (_consumer != null) return _consumer;
                consumer = new QueueConsumer(_control, (format, payload, token) => IpcMessage.Create(format, payload, this, token), Name);
                // Set-up, like connecting: it gets ConsumerStartTimeout even when this wait is shorter (Receive-IpcMessage
                // waits in 1 s slices, which a loaded broker's two round trips can outlast). Ctrl+C still stops it.
                Deadline start = deadline.IsInfinite || deadline.RemainingMilliseconds > ConsumerStartTimeout.TotalMilliseconds
                    ? deadline
                    : Deadline.After(ConsumerStartTimeout);
                try
                {
                    Waits.Run(t => _control.BasicQosAsync(0, _options.Prefetch, false, t), start, cancellationToken);
                    string queue = _consumeQueue!;
                    Waits.Run(t => _control.BasicConsumeAsync(queue, autoAck: false, consumer, t), start, cancellationToken);
                }
                catch (Waits.DeadlineExpired)
                {
                    throw new IpcException(IpcErrorKind.ReceiveTimeout, $"The broker did not start the consumer of '{Name}' in time.", Name);
                }
                catch (RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason != null)
                {
                    throw AmqpErrors.FromShutdown(e.ShutdownReason, $"Consuming from '{_consumeQueue}'", Name);
                }
                catch (Exception e) when (AmqpErrors.IsConnectionLoss(e))
                {
                    throw new IpcException(IpcErrorKind.ChannelClosed, $"'{Name}' lost its broker connection before the consumer started ({e.Message}).", Name, e);
                }
                _acks = new Acknowledgements(_control, () => consumer.Generation, _options.Prefetch);
                return _consumer = consumer;
            }
        }

        private IChannel OpenChannel(CreateChannelOptions options, Deadline deadline, CancellationToken cancellationToken)
        {
            try
            {
                return Waits.Run(t => _connection.CreateChannelAsync(options, t), AtLeastOneTry(deadline), cancellationToken);
            }
            catch (Waits.DeadlineExpired)
            {
                throw new IpcException(IpcErrorKind.SendTimeout, $"The broker did not open a channel for '{Name}' in time.", Name);
            }
            catch (Exception e) when (AmqpErrors.IsConnectionLoss(e))
            {
                throw new IpcException(IpcErrorKind.ChannelClosed, $"'{Name}' has no broker connection right now ({e.Message}).", Name, e);
            }
        }

        /// <summary>A broker round trip for -TimeoutSeconds 0 still gets a few seconds: "poll once" cannot mean "never ask".</summary>
        private static Deadline AtLeastOneTry(Deadline deadline) =>
            deadline.HasExpired ? Deadline.After(TimeSpan.FromSeconds(5)) : deadline;
    }
}
