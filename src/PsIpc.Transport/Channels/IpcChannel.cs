using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    public enum ChannelRole { Server, Client, Peer }

    public enum ChannelState { Listening, Connected, Closed, Faulted }

    /// <summary>What carries a channel's messages. A transport outside this assembly that fits none says Other.</summary>
    public enum ChannelKind { Pipe, Tcp, Unix, Udp, Memory, Amqp, Other }

    /// <summary>What a caller asked of a channel that the channel cannot do (see <see cref="IpcChannel.CanSend"/>, <see cref="IpcChannel.CanRequest"/>).</summary>
    public enum ChannelOperation { Send, Receive, Request }

    /// <summary>
    /// The contract every transport implements, and the one thing the cmdlets know: a pipe server or client,
    /// a server's view of one peer, a socket, a shared memory queue, a message queue, or a channel defined in
    /// another assembly. Same semantics for all: Send queues a message (waiting for room up to a deadline),
    /// Receive takes messages in arrival order, Flush waits until what was sent has been handed on, Close
    /// flushes, says goodbye and releases everything.
    /// A subclass implements <see cref="SendCore"/>, <see cref="ReceiveCore"/> and <see cref="CloseCore"/>, says
    /// what it cannot do through <see cref="CanSend"/>/<see cref="CanReceive"/>, and describes its peer through
    /// <see cref="IsAuthenticated"/>, <see cref="AcceptsCliXml"/> and <see cref="PeerProcessId"/>: the module
    /// asks these members, never the concrete type (docs/architecture.md, "Adding a transport").
    /// </summary>
    public abstract partial class IpcChannel : IDisposable
    {
        private static readonly WaitCounter s_connectWaiters = new WaitCounter();
        private readonly WaitCounter _waiters = new WaitCounter();
        private long _messagesSent, _messagesReceived, _bytesSent, _bytesReceived;
        private int _closed;
        private readonly object _returnedGate = new object();
        private readonly List<IpcMessage> _returned = new List<IpcMessage>();

        protected IpcChannel(string name, ChannelKind kind, ChannelRole role, ChannelOptions? options)
        {
            Name = name ?? throw new ArgumentNullException(nameof(name));
            Kind = kind;
            Role = role;
            Options = options ?? new ChannelOptions();
            CreatedAt = DateTime.Now;
        }

        public string Name { get; }
        public ChannelKind Kind { get; }
        public ChannelRole Role { get; }
        public DateTime CreatedAt { get; }
        public ChannelOptions Options { get; }

        public abstract ChannelState State { get; }

        /// <summary>Peers connected right now.</summary>
        public abstract int PeerCount { get; }

        /// <summary>The address a peer uses to reach this endpoint (a socket path, a pipe path, a URI).</summary>
        public abstract string Address { get; }

        /// <summary>False for an endpoint that only receives or only reads (Send then fails with a clear error).</summary>
        public virtual bool CanSend => true;

        /// <summary>False for an endpoint that only sends, e.g. a server's view of one peer (Receive from the server).</summary>
        public virtual bool CanReceive => true;

        /// <summary>
        /// True when the peer is known: it runs as this user (checked by the system), or proved a shared secret
        /// over a channel that protects what follows. False unless a transport can say so.
        /// </summary>
        public virtual bool IsAuthenticated => false;

        /// <summary>
        /// Whether CliXml payloads whose sender is this channel may be deserialized: CliXml makes the receiver
        /// rehydrate types, so only from authenticated peers. A transport that cannot authenticate keeps the default.
        /// </summary>
        public virtual bool AcceptsCliXml => IsAuthenticated;

        /// <summary>The peer's process id where the transport knows it (the PsIpc hello), 0 otherwise.</summary>
        public virtual int PeerProcessId => 0;

        public long MessagesSent => Interlocked.Read(ref _messagesSent);
        public long MessagesReceived => Interlocked.Read(ref _messagesReceived);
        public long BytesSent => Interlocked.Read(ref _bytesSent);
        public long BytesReceived => Interlocked.Read(ref _bytesReceived);

        public bool IsClosed => Volatile.Read(ref _closed) != 0;

        /// <summary>
        /// Calls blocked on this channel right now: Send, Receive, and the Flush and Close waits of the cmdlets.
        /// Counted from the moment the call holds its cancellation token, so once it is above 0 a stop
        /// (Ctrl+C) reaches the wait itself, not the command before it (what tests of Ctrl+C wait for).
        /// </summary>
        public int Waiters => Volatile.Read(ref _waiters.Count);

        /// <summary>Connects in this process waiting for a channel that does not exist yet (a pipe, a socket, a broker).</summary>
        public static int ConnectWaiters => Volatile.Read(ref s_connectWaiters.Count);

        /// <summary>Counts a wait on this channel in <see cref="Waiters"/> until the returned scope is disposed.</summary>
        public WaitScope BeginWait() => new WaitScope(_waiters);

        /// <summary>Counts a connect in <see cref="ConnectWaiters"/> until the returned scope is disposed.</summary>
        public static WaitScope BeginConnectWait() => new WaitScope(s_connectWaiters);

        /// <summary>Raised once when Close starts, before anything is released (a request handler stops here).</summary>
        public event EventHandler<Deadline>? Closing;

        /// <summary>Raised once, after the channel closed.</summary>
        public event EventHandler? Closed;

        /// <summary>Queues one message; waits for room (back-pressure) or for a peer, up to the deadline.</summary>
        /// <exception cref="IpcException">SendTimeout, ChannelClosed, PeerDisconnected, MessageTooLarge, OperationNotSupported.</exception>
        public void Send(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            if (payload == null) throw new ArgumentNullException(nameof(payload));
            ThrowIfClosed();
            if (!CanSend) throw NotSupportedError(ChannelOperation.Send);
            try
            {
                using (BeginWait()) SendCore(format, payload, deadline, cancellationToken);
            }
            catch (IpcException)
            {
                CountError(); // timeouts, a peer gone, a message too large: the statistics' Errors
                throw;
            }
        }

        /// <summary>
        /// Takes up to <paramref name="max"/> messages in arrival order, waiting for the first one.
        /// Returns how many were taken, 0 when the deadline passed, -1 when no message will ever come
        /// (every peer closed). An item whose <see cref="IpcMessage.Fault"/> is set reports an error at
        /// that point of the stream.
        /// </summary>
        public int Receive(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            if (into == null) throw new ArgumentNullException(nameof(into));
            ThrowIfClosed();
            if (!CanReceive) throw NotSupportedError(ChannelOperation.Receive);
            int returned = TakeReturned(into, max);
            if (returned > 0) return returned;
            try
            {
                using (BeginWait()) return ReceiveCore(into, max, deadline, cancellationToken);
            }
            catch (InvalidOperationException) when (IsClosed)
            {
                throw ClosedError();
            }
        }

        /// <summary>
        /// Puts messages that Receive handed out but the caller could not deliver (its pipeline was stopped
        /// downstream, e.g. by Select-Object -First) back at the head of the channel, in order, so the next
        /// Receive gets them: nothing taken is lost. A transport with its own redelivery (a broker's requeue,
        /// a shared ring) overrides this.
        /// </summary>
        public virtual void ReturnUnreceived(IList<IpcMessage> messages, int start)
        {
            if (messages == null || start >= messages.Count || IsClosed) return;
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
        /// The message was handed to its consumer (written to the PowerShell pipeline). A transport with
        /// acknowledgements confirms it here; for the others nothing is left to do.
        /// </summary>
        public virtual void Acknowledge(IpcMessage message)
        {
        }

        /// <summary>
        /// The message could not be decoded and will not be delivered. A transport with dead-lettering moves it
        /// there; it is never silently dropped where the transport can keep it.
        /// </summary>
        public virtual void Reject(IpcMessage message, Exception reason)
        {
        }

        /// <summary>Waits until every message sent so far was handed on (to the system, the peer or the broker).</summary>
        public virtual void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
        }

        /// <summary>Flushes (up to the deadline), tells peers goodbye, releases every resource. Idempotent.</summary>
        public void Close(Deadline deadline)
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0) return;
            try
            {
                Closing?.Invoke(this, deadline);
            }
            finally
            {
                try
                {
                    CloseCore(deadline);
                }
                finally
                {
                    Closed?.Invoke(this, EventArgs.Empty);
                }
            }
        }

        public void Dispose()
        {
            Close(Deadline.After(Options.CloseTimeout));
            GC.SuppressFinalize(this);
        }

        public override string ToString() => Name;

        /// <summary>The error for an operation this channel cannot do. Override to point the user elsewhere.</summary>
        public virtual IpcException NotSupportedError(ChannelOperation operation)
        {
            if (operation != ChannelOperation.Request)
            {
                return new IpcException(IpcErrorKind.OperationNotSupported,
                    $"The {Kind} {Role.ToString().ToLowerInvariant()} channel '{Name}' cannot {operation.ToString().ToLowerInvariant()} messages.", Name);
            }
            return new IpcException(IpcErrorKind.OperationNotSupported, Role == ChannelRole.Server
                ? $"'{Name}' is a server: it answers requests (a -ScriptBlock handler, or Reply to a received message); requests are made from a client channel."
                : $"The {Kind} {Role.ToString().ToLowerInvariant()} channel '{Name}' cannot make requests. Nothing was sent.", Name);
        }

        /// <summary>Sends one message; called by <see cref="Send"/> once the channel is open and can send.</summary>
        protected abstract void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken);

        /// <summary>
        /// Takes up to <paramref name="max"/> messages; called by <see cref="Receive"/> after the messages put back
        /// by <see cref="ReturnUnreceived"/> are gone. Returns the count, 0 at the deadline, -1 at the end.
        /// </summary>
        protected abstract int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken);

        /// <summary>Releases the transport; called once by <see cref="Close"/>.</summary>
        protected abstract void CloseCore(Deadline deadline);

        /// <summary>Moves up to <paramref name="max"/> messages that <see cref="ReturnUnreceived"/> put back into <paramref name="into"/>.</summary>
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

        protected internal void CountSent(long bytes)
        {
            Interlocked.Increment(ref _messagesSent);
            Interlocked.Add(ref _bytesSent, bytes);
            MarkSent();
        }

        protected internal void CountSent(int messages, long bytes)
        {
            Interlocked.Add(ref _messagesSent, messages);
            Interlocked.Add(ref _bytesSent, bytes);
            MarkSent();
        }

        protected internal void CountReceived(int messages, long bytes)
        {
            Interlocked.Add(ref _messagesReceived, messages);
            Interlocked.Add(ref _bytesReceived, bytes);
            MarkReceived();
        }

        protected void ThrowIfClosed()
        {
            if (IsClosed) throw ClosedError();
        }

        protected IpcException ClosedError() =>
            new IpcException(IpcErrorKind.ChannelClosed, $"The channel '{Name}' is closed.", Name);

        /// <summary>One counted wait (<see cref="Waiters"/>, <see cref="ConnectWaiters"/>), ended by Dispose (a using block).</summary>
        public readonly struct WaitScope : IDisposable
        {
            private readonly WaitCounter _counter;

            internal WaitScope(WaitCounter counter)
            {
                _counter = counter;
                Interlocked.Increment(ref counter.Count);
            }

            public void Dispose() => Interlocked.Decrement(ref _counter.Count);
        }

        internal sealed class WaitCounter
        {
            public int Count;
        }
    }
}
