using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// What every connection-based server shares (pipe servers, TCP and Unix socket servers): accepting in the
    /// background, admission (the peer's user, the connection limit, handshakes in progress), live and pending
    /// peers, waiting for the first client, broadcast, flush, close, the idle sweep and fault reporting. Receive
    /// merges what all peers send, in arrival order; each message's Sender is the <see cref="IpcPeer"/> to reply
    /// to. A transport derives from it and only listens and accepts (<see cref="AcceptNext"/>).
    /// Files: this one (admission and lifecycle), ServerChannel.Messages.cs (send, receive, flush, faults).
    /// </summary>
    public abstract partial class ServerChannel : IpcChannel, IConnectionOwner
    {
        private readonly object _gate = new object();
        private readonly List<MessageConnection> _live = new List<MessageConnection>();
        private readonly List<MessageConnection> _pending = new List<MessageConnection>();
        private readonly HashSet<IDisposable> _securing = new HashSet<IDisposable>(); // TLS / secret handshakes in progress
        private readonly BoundedQueue<IpcMessage> _inbound;
        private readonly Timer? _idleTimer;
        private readonly uint? _userId;
        private Thread? _acceptThread;
        private long _accepted, _refused, _connectionErrors, _idleClosed;
        private int _readerThreads; // connections with a reader thread now (at most Options.ReaderThreads); under _gate
        private MessageConnection? _soleLive; // the only live connection, if there is exactly one; set under _gate
        private IpcException? _lastConnectionError;

        /// <param name="sweepIdle">Whether connections idle for Options.IdleTimeout are closed (socket servers).</param>
        private protected ServerChannel(string name, ChannelKind kind, ChannelOptions? options, MessageFraming framing, bool sweepIdle)
            : base(name, kind, ChannelRole.Server, options)
        {
            MessageFraming = framing;
            if (Options.ReceiveBudget == null) Options.ReceiveBudget = new ReceiveBudget(ReceiveBudget.DefaultFor(Options.MaxMessageSize));
            _inbound = new BoundedQueue<IpcMessage>(Options.ReceiveBufferMessages, Options.ReceiveBufferBytes);
            _userId = Platform.UnixNative.IsWindows ? (uint?)null : Platform.UnixNative.EffectiveUserId;
            if (sweepIdle && Options.IdleTimeout > TimeSpan.Zero)
            {
                // One sweep for all connections rather than a timer each: a few checks a second are plenty.
                long period = Math.Max(50, Math.Min(1000, (long)Options.IdleTimeout.TotalMilliseconds / 4));
                _idleTimer = new Timer(_ => CloseIdleConnections(), null, period, period);
            }
        }

        private protected MessageFraming MessageFraming { get; }

        /// <summary>Peers connected right now.</summary>
        public override int PeerCount { get { lock (_gate) return _live.Count; } }

        public override ChannelState State
        {
            get
            {
                if (IsClosed) return ChannelState.Closed;
                lock (_gate) return _live.Count > 0 ? ChannelState.Connected : ChannelState.Listening;
            }
        }

        /// <summary>The peers connected now, as channels a reply can be sent to.</summary>
        public IReadOnlyList<IpcChannel> Peers
        {
            get
            {
                lock (_gate)
                {
                    var peers = new List<IpcChannel>(_live.Count);
                    foreach (MessageConnection c in _live) peers.Add(c.SenderView!);
                    return peers;
                }
            }
        }

        /// <summary>Clients accepted since the server started.</summary>
        public long ConnectionsAccepted => Interlocked.Read(ref _accepted);

        /// <summary>Clients turned away: the server was full, or the client was of another user.</summary>
        public long ConnectionsRefused => Interlocked.Read(ref _refused);

        /// <summary>Connections that ended with an error (garbage, an oversized frame, HTTP, a peer vanishing mid-message).</summary>
        public long ConnectionErrors => Interlocked.Read(ref _connectionErrors);

        public IpcException? LastConnectionError => Volatile.Read(ref _lastConnectionError);

        /// <summary>Connections closed because they stayed idle longer than the idle timeout (also counted in ConnectionErrors).</summary>
        public long IdleConnectionsClosed => Interlocked.Read(ref _idleClosed);

        /// <summary>
        /// Set by a request handler: a Line/Raw client that shuts down its sending side keeps its connection for
        /// the replies, and an end-of-input marker after its last message tells the handler to close it.
        /// </summary>
        public bool KeepsHalfClosedConnections { get; set; }

        /// <summary>Admission at open, under the server's lock: an error refuses the peer (e.g. the server is full).</summary>
        private protected abstract IpcException? RefusalAtOpen(int live, long accepted);

        /// <summary>How many peers the server takes at once: handshakes in progress are bounded by twice this.</summary>
        private protected abstract int Capacity { get; }

        /// <summary>Blocks until a client arrives; null to go on (it was refused and reported). Throws once the listener is closed.</summary>
        private protected abstract ConnectedStream? AcceptNext();

        /// <summary>Stops listening (closes the listener, removes a socket file); called once, first thing in Close.</summary>
        private protected abstract void StopListening();

        /// <summary>What a client turned away at accept is told (a pipe's clients know PipeBusy).</summary>
        private protected virtual IpcErrorKind BusyKind => IpcErrorKind.ServerBusy;

        /// <summary>True when every connection first goes through <see cref="SecureAsync"/>.</summary>
        private protected virtual bool HasSecurityStage => false;

        /// <summary>True when that stage starts with TLS (a client turned away then cannot read an error frame).</summary>
        private protected virtual bool UsesTlsStage => false;

        /// <summary>The stage before the framing (TLS, the shared secret): asynchronous, so a slow client holds no thread.</summary>
        private protected virtual System.Threading.Tasks.Task<ConnectedStream> SecureAsync(ConnectedStream raw) =>
            throw new NotSupportedException("This server has no security stage.");

        /// <summary>Whether faults wait for room in the receive queue (a pipe's few clients) or are dropped when it is full.</summary>
        private protected virtual bool WaitsToReportFaults => false;

        /// <summary>A peer left (after it was removed): a pipe server ends its stream once all its clients came and went.</summary>
        private protected virtual void OnPeerLeft(int live, long accepted)
        {
        }

        /// <summary>Counts a refusal made outside admission (a peer of another user, a full server at accept).</summary>
        private protected void CountRefused() => Interlocked.Increment(ref _refused);

        private protected void StartAccepting()
        {
            _acceptThread = new Thread(AcceptLoop, 128 * 1024) { IsBackground = true, Name = $"PsIpc accept {Name}" };
            _acceptThread.Start();
        }

        /// <summary>True when the peer may run as another user than this server's (checked by the system where it tells).</summary>
        private protected bool IsOtherUser(PeerIdentity identity) =>
            identity.UserId.HasValue && _userId.HasValue && identity.UserId.Value != _userId.Value;

        private void AcceptLoop()
        {
            while (!IsClosed)
            {
                ConnectedStream? accepted;
                try
                {
                    accepted = AcceptNext();
                }
                catch (Exception) when (IsClosed)
                {
                    return;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (IpcException e)
                {
                    ReportFault(e, this);
                    continue;
                }
                catch (Exception e) when (e is System.IO.IOException || e is System.Net.Sockets.SocketException)
                {
                    ReportFault(new IpcException(IpcErrorKind.ConnectFailed, $"Accepting a client on '{Name}' failed: {e.Message}", Name, e), this);
                    Thread.Sleep(10); // e.g. out of file descriptors: do not spin
                    continue;
                }
                if (accepted == null) continue;
                try
                {
                    Admit(accepted);
                }
                catch (Exception e)
                {
                    // Whatever happens to one client (it left, out of memory or threads), the server goes on: an
                    // exception escaping this thread would end the whole process.
                    lock (_gate) _securing.Remove(accepted.Stream);
                    accepted.Stream.Dispose();
                    if (!(e is System.Net.Sockets.SocketException || e is ObjectDisposedException || e is System.IO.IOException))
                    {
                        ReportFault(new IpcException(IpcErrorKind.ConnectFailed, $"Taking a client on '{Name}' failed: {e.Message}", Name, e), this);
                    }
                }
            }
        }

        private void Admit(ConnectedStream accepted)
        {
            if (IsOtherUser(accepted.Identity))
            {
                CountRefused();
                accepted.Stream.Dispose();
                ReportFault(new IpcException(IpcErrorKind.AccessDenied,
                    $"A process of another user (uid {accepted.Identity.UserId}) tried to connect to '{Name}'; it was refused.", Name), this);
                return;
            }
            lock (_gate)
            {
                if (IsClosed || RefuseWhenFull(accepted))
                {
                    accepted.Stream.Dispose();
                    return;
                }
                if (HasSecurityStage) _securing.Add(accepted.Stream);
            }
            if (!HasSecurityStage)
            {
                StartConnection(accepted);
                return;
            }
            // TLS and the shared secret take round trips: asynchronous, bounded by the handshake timeout, so a
            // slow or silent client holds no thread and never holds up the accept loop or other clients.
            _ = FinishSecuringAsync(accepted, SecureAsync(accepted));
        }

        // Never throws (it runs on the thread pool, where an escaping exception would end the process).
        private async System.Threading.Tasks.Task FinishSecuringAsync(ConnectedStream raw, System.Threading.Tasks.Task<ConnectedStream> securing)
        {
            ConnectedStream? secured = null;
            IpcException? failure = null;
            try
            {
                secured = await securing.ConfigureAwait(false);
            }
            catch (IpcException e)
            {
                failure = e;
            }
            catch (Exception e)
            {
                failure = new IpcException(IpcErrorKind.ConnectFailed, $"The handshake with a client of '{Name}' failed: {e.Message}", Name, e);
            }
            try
            {
                lock (_gate) _securing.Remove(raw.Stream);
                if (secured == null)
                {
                    raw.Stream.Dispose();
                    if (IsClosed || failure == null) return;
                    if (failure.Kind == IpcErrorKind.AuthenticationFailed || failure.Kind == IpcErrorKind.AuthenticationRequired) CountRefused();
                    ReportFault(failure, this);
                    return;
                }
                lock (_gate)
                {
                    // A secured Line/Raw client counts only once it is a connection.
                    if (!MessageFraming.HasHandshake && _live.Count >= Capacity)
                    {
                        CountRefused();
                        secured.Stream.Dispose();
                        return;
                    }
                }
                StartConnection(secured);
            }
            catch (Exception e)
            {
                secured?.Stream.Dispose();
                raw.Stream.Dispose();
                if (!(e is System.Net.Sockets.SocketException || e is ObjectDisposedException || e is System.IO.IOException) && !IsClosed)
                {
                    ReportFault(new IpcException(IpcErrorKind.ConnectFailed, $"Starting a connection on '{Name}' failed: {e.Message}", Name, e), this);
                }
            }
        }

        // Handshakes in progress are bounded too, so a flood of silent connections cannot pile up. Call under
        // the lock. True when the server is full (the client is told so where it can be, then dropped).
        private bool RefuseWhenFull(ConnectedStream client)
        {
            bool plain = !MessageFraming.HasHandshake && !HasSecurityStage;
            bool full = plain ? _live.Count >= Capacity : (long)_live.Count + _pending.Count + _securing.Count >= 2L * Capacity;
            if (!full) return false;
            CountRefused();
            if (!plain && !UsesTlsStage) TellBusy(client);
            return true;
        }

        // A PsIpc client (hello or secret request first) reads an error frame before anything else: say why it is
        // turned away (ServerBusy), if the socket takes it at once.
        private void TellBusy(ConnectedStream client)
        {
            System.Net.Sockets.Socket? socket = client.Socket;
            if (socket == null) return;
            try
            {
                if (!socket.Poll(0, System.Net.Sockets.SelectMode.SelectWrite)) return;
                byte[] payload = ErrorFrame.Encode(BusyKind,
                    $"The server '{Name}' has as many clients and handshakes in progress as it takes ({Capacity}); try again later.");
                socket.Blocking = false;
                socket.Send(FrameHeader.Frame(FrameType.Error, payload));
            }
            catch (System.Net.Sockets.SocketException) { }
            catch (ObjectDisposedException) { }
        }

        private void StartConnection(ConnectedStream stream)
        {
            var connection = new MessageConnection(stream, this, MessageFraming, Options, Name, isServerSide: true) { CountersOf = this };
            connection.SenderView = new IpcPeer(this, connection);
            lock (_gate)
            {
                if (IsClosed)
                {
                    stream.Stream.Dispose();
                    return;
                }
                if (MessageFraming.HasHandshake) _pending.Add(connection);
                // The first few connections read on threads of their own; the rest on the thread pool (no thread each).
                connection.ReadsOnThreadPool = _readerThreads >= Options.ReaderThreads;
                if (!connection.ReadsOnThreadPool) _readerThreads++;
            }
            connection.Start(); // Line/Raw: open at once, through OnOpened
        }

        BoundedQueue<IpcMessage> IConnectionOwner.Inbound => _inbound;

        bool IConnectionOwner.KeepsHalfClosed => KeepsHalfClosedConnections;

        IpcException? IConnectionOwner.OnOpened(MessageConnection connection)
        {
            lock (_gate)
            {
                _pending.Remove(connection);
                if (IsClosed) return new IpcException(IpcErrorKind.ChannelClosed, $"The server '{Name}' is closing.", Name);
                IpcException? refusal = RefusalAtOpen(_live.Count, _accepted);
                if (refusal != null)
                {
                    CountRefused();
                    return refusal;
                }
                Interlocked.Increment(ref _accepted);
                _live.Add(connection);
                Volatile.Write(ref _soleLive, _live.Count == 1 ? connection : null);
                Monitor.PulseAll(_gate);
                return null;
            }
        }

        void IConnectionOwner.OnEnded(MessageConnection connection, IpcException? fault)
        {
            int live;
            lock (_gate)
            {
                _live.Remove(connection);
                _pending.Remove(connection);
                Volatile.Write(ref _soleLive, _live.Count == 1 ? _live[0] : null);
                if (!connection.ReadsOnThreadPool) _readerThreads--;
                live = _live.Count;
                Monitor.PulseAll(_gate);
            }
            if (fault != null && !IsClosed) ReportFault(fault, connection.SenderView!);
            OnPeerLeft(live, Interlocked.Read(ref _accepted));
        }
    }
}
