using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    // Request/reply on the channel contract: Request sends one message and returns the reply to it; Reply and
    // ReplyError answer a received request. docs/protocol.md 4 describes the correlation ids on the wire.
    public abstract partial class IpcChannel
    {
        private readonly object _plainRequestGate = new object();
        private bool _plainRequestBusy;

        /// <summary>
        /// True when <see cref="Request"/> matches its reply by a correlation id: several requests may then be in
        /// flight from several threads, and a reply that comes after its request timed out is dropped
        /// (<see cref="LateRepliesDropped"/>). False (Line/Raw framing, a peer of an older PsIpc version, transports
        /// without ids): Request sends, then takes the next message that arrives, one request at a time.
        /// </summary>
        public virtual bool SupportsCorrelation => false;

        /// <summary>
        /// False when a request on this channel could not get its reply from a peer: a server (it answers requests), or a
        /// channel whose own sends come back to its own receives, such as a shared memory queue (one ring that both ends
        /// send into and take from: the "reply" would be the request itself). <see cref="Request"/> then fails with
        /// <see cref="NotSupportedError"/>(<see cref="ChannelOperation.Request"/>) before anything is sent. The default:
        /// a channel that sends and receives and is not a server.
        /// </summary>
        public virtual bool CanRequest => CanSend && CanReceive && Role != ChannelRole.Server;

        /// <summary>Replies that arrived after their request had given up (timeout, Ctrl+C): dropped, never handed to a later call.</summary>
        public virtual long LateRepliesDropped => 0;

        /// <summary>
        /// Sends one message and waits for the reply to it, up to the deadline.
        /// </summary>
        /// <exception cref="IpcException">ReceiveTimeout at the deadline; HandlerFailed when the peer's handler failed on
        /// this request (the message is the handler's); ChannelClosed, PeerDisconnected, MessageTooLarge, SendTimeout;
        /// OperationNotSupported (nothing sent) when <see cref="CanRequest"/> is false.</exception>
        public IpcMessage Request(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            if (TryRequest(format, payload, deadline, cancellationToken, out IpcMessage? reply)) return reply!;
            throw new IpcException(IpcErrorKind.ReceiveTimeout, $"Timed out waiting for the reply to a request on '{Name}'.", Name);
        }

        /// <summary>As <see cref="Request"/>, but false instead of ReceiveTimeout at the deadline.</summary>
        public bool TryRequest(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken, out IpcMessage? reply)
        {
            if (payload == null) throw new ArgumentNullException(nameof(payload));
            ThrowIfClosed();
            if (!CanSend) throw NotSupportedError(ChannelOperation.Send);
            if (!CanReceive) throw NotSupportedError(ChannelOperation.Receive);
            // Before anything is sent: a request that cannot be answered must not leave a message behind.
            if (!CanRequest) throw NotSupportedError(ChannelOperation.Request);
            IpcMessage? received;
            try
            {
                received = RequestCore(format, payload, deadline, cancellationToken);
            }
            catch (InvalidOperationException) when (IsClosed)
            {
                throw ClosedError();
            }
            if (received?.Fault != null) throw received.Fault;
            reply = received;
            return received != null;
        }

        /// <summary>
        /// Answers <paramref name="request"/>, a message this channel's peer sent (call it on the message's Sender):
        /// the reply carries the request's correlation id when it has one, so the requester matches it.
        /// </summary>
        public void Reply(IpcMessage request, MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            if (request == null) throw new ArgumentNullException(nameof(request));
            if (payload == null) throw new ArgumentNullException(nameof(payload));
            ThrowIfClosed();
            if (!CanSend) throw NotSupportedError(ChannelOperation.Send);
            ReplyCore(request, format, payload, deadline, cancellationToken);
        }

        /// <summary>
        /// Tells the sender of <paramref name="request"/> that it failed (<paramref name="kind"/>, e.g. HandlerFailed,
        /// with <paramref name="message"/>); the connection stays open. False when this channel's peer cannot be told
        /// (Line/Raw framing, an older PsIpc peer): it gets no reply for that request.
        /// </summary>
        public bool ReplyError(IpcMessage request, IpcErrorKind kind, string message, Deadline deadline, CancellationToken cancellationToken)
        {
            if (request == null) throw new ArgumentNullException(nameof(request));
            ThrowIfClosed();
            if (!CanSend) return false;
            return ReplyErrorCore(request, kind, message ?? string.Empty, deadline, cancellationToken);
        }

        /// <summary>
        /// Sends and returns the reply, or null at the deadline. The default, for channels without correlation ids:
        /// one request at a time, the reply being the next message received.
        /// </summary>
        protected virtual IpcMessage? RequestCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            lock (_plainRequestGate)
            {
                while (_plainRequestBusy)
                {
                    if (!GateWait.Wait(_plainRequestGate, deadline, cancellationToken)) return null;
                }
                _plainRequestBusy = true;
            }
            try
            {
                SendCore(format, payload, deadline, cancellationToken);
                var into = new List<IpcMessage>(1);
                int taken = Receive(into, 1, deadline, cancellationToken);
                if (taken < 0)
                {
                    throw new IpcException(IpcErrorKind.PeerDisconnected, $"The peer of '{Name}' closed before it replied.", Name);
                }
                return taken == 0 ? null : into[0];
            }
            finally
            {
                lock (_plainRequestGate)
                {
                    _plainRequestBusy = false;
                    Monitor.PulseAll(_plainRequestGate);
                }
            }
        }

        /// <summary>Sends a reply to <paramref name="request"/>; the default sends it as a plain message.</summary>
        protected virtual void ReplyCore(IpcMessage request, MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken) =>
            SendCore(format, payload, deadline, cancellationToken);

        /// <summary>Reports a failed request to its sender; the default cannot (false).</summary>
        protected virtual bool ReplyErrorCore(IpcMessage request, IpcErrorKind kind, string message, Deadline deadline, CancellationToken cancellationToken) => false;
    }
}
