using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    public enum ChannelRole { Server, Client, Peer }

    public enum ChannelState { Listening, Connected, Closed, Faulted }

    /// <summary>
    /// Every endpoint Send/Receive accept: a pipe server or client, a server's view of one peer, and later
    /// sockets, shared memory queues and message queues. Same semantics for all: Send queues a message
    /// (waiting for room up to a deadline), Receive takes messages in arrival order, Flush waits until what
    /// was sent has been handed to the operating system, Close flushes, says goodbye and releases everything.
    /// </summary>
    public abstract class IpcChannel : IDisposable
    {
        private long _messagesSent, _messagesReceived, _bytesSent, _bytesReceived;
        private int _closed;
        private readonly object _returnedGate = new object();
        private readonly List<IpcMessage> _returned = new List<IpcMessage>();

        protected IpcChannel(string name, string kind, ChannelRole role, ChannelOptions options)
        {
            Name = name;
            Kind = kind;
            Role = role;
            Options = options ?? new ChannelOptions();
            CreatedAt = DateTime.Now;
        }

        public string Name { get; }
        public string Kind { get; }
        public ChannelRole Role { get; }
        public DateTime CreatedAt { get; }
        public ChannelOptions Options { get; }

        public abstract ChannelState State { get; }

        /// <summary>Peers connected right now.</summary>
        public abstract int PeerCount { get; }

        /// <summary>The address a peer uses to reach this endpoint (a socket path, a pipe path).</summary>
        public abstract string Address { get; }

        public long MessagesSent => Interlocked.Read(ref _messagesSent);
        public long MessagesReceived => Interlocked.Read(ref _messagesReceived);
        public long BytesSent => Interlocked.Read(ref _bytesSent);
        public long BytesReceived => Interlocked.Read(ref _bytesReceived);

        public bool IsClosed => Volatile.Read(ref _closed) != 0;

        /// <summary>Raised once, after the channel closed.</summary>
        public event EventHandler Closed;

        /// <summary>Queues one message; waits for room (back-pressure) or for a peer, up to the deadline.</summary>
        /// <exception cref="IpcException">SendTimeout, ChannelClosed, PeerDisconnected, MessageTooLarge.</exception>
        public void Send(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            if (payload == null) throw new ArgumentNullException(nameof(payload));
            ThrowIfClosed();
            SendCore(new OutgoingFrame((FrameType)format, payload), deadline, cancellationToken);
        }

        /// <summary>
        /// Takes up to <paramref name="max"/> messages in arrival order, waiting for the first one.
        /// Returns how many were taken, 0 when the deadline passed, -1 when no message will ever come
        /// (every peer closed). An item whose <see cref="IpcMessage.Fault"/> is set reports an error at
        /// that point of the stream.
        /// </summary>
        public virtual int Receive(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            ThrowIfClosed();
            lock (_returnedGate)
            {
                if (_returned.Count > 0)
                {
                    int n = Math.Min(max, _returned.Count);
                    into.AddRange(_returned.GetRange(0, n));
                    _returned.RemoveRange(0, n);
                    return n;
                }
            }
            BoundedQueue<IpcMessage> inbound = Inbound;
            if (inbound == null)
            {
                throw new IpcException(IpcErrorKind.ChannelClosed,
                    $"'{Name}' is a server's view of one peer; it sends replies. Receive from the server channel.", Name);
            }
            try
            {
                return inbound.TakeBatch(into, max, deadline, cancellationToken);
            }
            catch (InvalidOperationException) when (IsClosed)
            {
                throw ClosedError();
            }
        }

        /// <summary>
        /// Puts messages that Receive handed out but the caller could not deliver (its pipeline was stopped
        /// downstream, e.g. by Select-Object -First) back at the head of the channel, in order, so the next
        /// Receive gets them: nothing taken is lost.
        /// </summary>
        public virtual void ReturnUnreceived(IList<IpcMessage> messages, int start)
        {
            if (start >= messages.Count || IsClosed) return;
            lock (_returnedGate)
            {
                var rest = new List<IpcMessage>(messages.Count - start + _returned.Count);
                for (int i = start; i < messages.Count; i++) rest.Add(messages[i]);
                rest.AddRange(_returned);
                _returned.Clear();
                _returned.AddRange(rest);
            }
        }

        /// <summary>
        /// For a <see cref="Receive"/> override: moves up to <paramref name="max"/> messages that
        /// <see cref="ReturnUnreceived"/> put back into <paramref name="into"/>; returns how many (0 when none).
        /// </summary>
        protected int TakeReturned(List<IpcMessage> into, int max)
        {
            lock (_returnedGate)
            {
                if (_returned.Count == 0) return 0;
                int n = Math.Min(max, _returned.Count);
                into.AddRange(_returned.GetRange(0, n));
                _returned.RemoveRange(0, n);
                return n;
            }
        }

        /// <summary>Waits until every message sent so far was written to the operating system.</summary>
        public abstract void Flush(Deadline deadline, CancellationToken cancellationToken);

        /// <summary>Flushes (up to the deadline), tells peers goodbye, releases every resource. Idempotent.</summary>
        public void Close(Deadline deadline)
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0) return;
            try
            {
                CloseCore(deadline);
            }
            finally
            {
                Closed?.Invoke(this, EventArgs.Empty);
            }
        }

        public void Dispose() => Close(Deadline.After(Options.CloseTimeout));

        public override string ToString() => Name;

        /// <summary>The queue Receive takes from; null for endpoints that only send.</summary>
        internal abstract BoundedQueue<IpcMessage> Inbound { get; }

        internal abstract void SendCore(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken);

        protected abstract void CloseCore(Deadline deadline);

        internal void CountSent(long bytes)
        {
            Interlocked.Increment(ref _messagesSent);
            Interlocked.Add(ref _bytesSent, bytes);
        }

        internal void CountSent(int messages, long bytes)
        {
            Interlocked.Add(ref _messagesSent, messages);
            Interlocked.Add(ref _bytesSent, bytes);
        }

        internal void CountReceived(int messages, long bytes)
        {
            Interlocked.Add(ref _messagesReceived, messages);
            Interlocked.Add(ref _bytesReceived, bytes);
        }

        protected void ThrowIfClosed()
        {
            if (IsClosed) throw ClosedError();
        }

        protected IpcException ClosedError() =>
            new IpcException(IpcErrorKind.ChannelClosed, $"The channel '{Name}' is closed.", Name);
    }
}
