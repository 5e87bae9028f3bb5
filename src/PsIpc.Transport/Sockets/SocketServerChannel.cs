using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// A socket server (TCP or Unix domain) that accepts many clients in the background. Receive merges what
    /// all clients send, in arrival order, each message's Sender being the <see cref="SocketPeer"/> to reply
    /// to; Send goes to every connected client (waiting for the first one when none is connected). Unlike a
    /// pipe server it has no lifetime client count: it serves until it is closed.
    /// </summary>
    public sealed class SocketServerChannel : IpcChannel, ISocketConnectionOwner, ISocketServer
    {
        /// <summary>Default of -MaxConnections: clients connected at the same time.</summary>
        public const int DefaultMaxConnections = 1000;


        private readonly object _gate = new object();
        private readonly List<ISocketConnection> _live = new List<ISocketConnection>();
        private readonly List<ISocketConnection> _pending = new List<ISocketConnection>();
        private readonly HashSet<Socket> _securing = new HashSet<Socket>(); // TLS / shared-secret handshakes in progress
        private readonly SocketSecurity _security;
        private readonly Timer _idleTimer;
        private readonly HandlerErrorLog _handlerErrors = new HandlerErrorLog();
        private readonly BoundedQueue<IpcMessage> _inbound;
        private readonly Socket _listener;
        private readonly Thread _acceptThread;
        private readonly string _path;
        private readonly uint _uid;
        private long _accepted, _refused, _connectionErrors, _idleClosed;
        private IpcException _lastConnectionError;

        private SocketServerChannel(string name, Socket listener, SocketTransport transport, SocketFraming framing, int maxConnections,
            string path, ChannelOptions options, SocketSecurity security)
            : base(name, transport == SocketTransport.Tcp ? ChannelKind.Tcp : ChannelKind.Unix, ChannelRole.Server, options)
        {
            if (maxConnections < 1) throw new ArgumentOutOfRangeException(nameof(maxConnections), "MaxConnections must be at least 1.");
            _listener = listener;
            _path = path;
            _security = security != null && security.ServerNeedsHandshake ? security : null;
            if (_security?.HasSecret == true) _ = _security.Key; // derived once now, not while the first client waits
            if (Options.ReceiveBudget == null) Options.ReceiveBudget = new ReceiveBudget(ReceiveBudget.DefaultFor(Options.MaxMessageSize));
            Transport = transport;
            Framing = framing;
            MaxConnections = maxConnections;
            if (transport == SocketTransport.Tcp)
            {
                var endPoint = (IPEndPoint)listener.LocalEndPoint;
                IPAddress = endPoint.Address;
                Port = endPoint.Port;
            }
            else
            {
                _uid = UnixNative.EffectiveUserId;
            }
            _inbound = new BoundedQueue<IpcMessage>(Options.ReceiveBufferMessages, Options.ReceiveBufferBytes);
            if (Options.IdleTimeout > TimeSpan.Zero)
            {
                // One sweep for all connections rather than a timer each: a few checks a second are plenty.
                long period = Math.Max(50, Math.Min(1000, (long)Options.IdleTimeout.TotalMilliseconds / 4));
                _idleTimer = new Timer(_ => CloseIdleConnections(), null, period, period);
            }
            _acceptThread = new Thread(AcceptLoop, 128 * 1024) { IsBackground = true, Name = $"PsIpc accept {name}" };
            _acceptThread.Start();
        }

        /// <summary>
        /// Listens on a TCP address and port (0: a free port, see <see cref="Port"/>). A loopback address is
        /// served as it is; any other lets other machines connect and requires a shared secret
        /// (<paramref name="security"/>.Secret), or it fails closed.
        /// </summary>
        /// <param name="security">A shared secret every client must prove it knows, and/or a TLS certificate; null for none.</param>
        /// <exception cref="IpcException">AuthenticationRequired, AddressInUse, ConnectFailed.</exception>
        public static SocketServerChannel ListenTcp(string name, IPAddress address, int port, SocketFraming framing, int maxConnections, ChannelOptions options,
            SocketSecurity security = null)
        {
            if (address == null) throw new ArgumentNullException(nameof(address));
            if (port < 0 || port > 65535) throw new ArgumentOutOfRangeException(nameof(port));
            security?.ValidateForServer();
            string display = name ?? $"tcp:{FormatAddress(address)}:{port}";
            if (!IPAddress.IsLoopback(address) && !(security?.HasSecret ?? false))
            {
                throw new IpcException(IpcErrorKind.AuthenticationRequired,
                    $"Serving {address} would let other machines connect, and that requires authentication: give a shared secret (-Secret) " +
                    "that every client must prove it knows (add -Certificate to encrypt too). Or serve a loopback address (127.0.0.1, the default, or ::1) or a Unix socket (-Path).",
                    display);
            }
            Socket listener = SocketEndpoints.ListenTcp(address, port, display);
            int bound = ((IPEndPoint)listener.LocalEndPoint).Port;
            return new SocketServerChannel(name ?? $"tcp:{FormatAddress(address)}:{bound}", listener, SocketTransport.Tcp, framing, maxConnections, null, options?.Clone(), security);
        }

        /// <summary>Listens on a Unix domain socket at <paramref name="path"/> (mode 0600; peers of other users are refused).</summary>
        /// <exception cref="IpcException">SocketPathTooLong, AddressInUse.</exception>
        public static SocketServerChannel ListenUnix(string name, string path, SocketFraming framing, int maxConnections, ChannelOptions options,
            SocketSecurity security = null)
        {
            if (string.IsNullOrEmpty(path)) throw new ArgumentNullException(nameof(path));
            security?.ValidateForServer();
            if (UnixNative.IsWindows) throw new PlatformNotSupportedException("Unix domain socket servers are supported on Linux and macOS only.");
            string full = System.IO.Path.GetFullPath(path);
            string display = name ?? $"unix:{full}";
            Socket listener = SocketEndpoints.ListenUnix(full, display);
            return new SocketServerChannel(display, listener, SocketTransport.Unix, framing, maxConnections, full, options?.Clone(), security);
        }

        internal static string FormatAddress(IPAddress address) =>
            address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();

        public SocketTransport Transport { get; }
        public SocketFraming Framing { get; }

        /// <summary>The TCP address listened on (null for a Unix socket).</summary>
        public IPAddress IPAddress { get; }

        /// <summary>The TCP port listened on (the one chosen when -Port was 0); 0 for a Unix socket.</summary>
        public int Port { get; }

        /// <summary>The Unix socket path (null for TCP).</summary>
        public string Path => _path;

        /// <summary>Where clients connect: address:port for TCP, the socket path for Unix.</summary>
        public override string Address => Transport == SocketTransport.Tcp ? $"{FormatAddress(IPAddress)}:{Port}" : _path;

        /// <summary>Clients connected at the same time, at most; later ones are refused until some leave.</summary>
        public int MaxConnections { get; }

        public override int PeerCount { get { lock (_gate) return _live.Count; } }

        /// <summary>Clients connected now (the same as PeerCount).</summary>
        public int ClientCount => PeerCount;

        /// <summary>Clients accepted since the server started.</summary>
        public long ConnectionsAccepted => Interlocked.Read(ref _accepted);

        /// <summary>Clients turned away: the server was full, or the client was of another user (Unix).</summary>
        public long ConnectionsRefused => Interlocked.Read(ref _refused);

        /// <summary>Connections that ended with an error (garbage, an oversized frame, HTTP, a peer vanishing mid-message).</summary>
        public long ConnectionErrors => Interlocked.Read(ref _connectionErrors);

        public IpcException LastConnectionError => _lastConnectionError;

        /// <summary>Connections closed because they stayed idle longer than the idle timeout (also counted in ConnectionErrors).</summary>
        public long IdleConnectionsClosed => Interlocked.Read(ref _idleClosed);

        /// <summary>True when every client must prove it knows the shared secret (-Secret).</summary>
        public bool RequiresSecret => _security?.HasSecret ?? false;

        /// <summary>True when connections are encrypted with TLS (-Certificate).</summary>
        public bool UsesTls => _security?.ServerUsesTls ?? false;

        /// <summary>Seconds a client has to finish the handshake (Hello, TLS, shared secret).</summary>
        public double HandshakeTimeoutSeconds => Options.HandshakeTimeout.TotalSeconds;

        /// <summary>Seconds a connection may stay idle (no whole message either way) before it is closed; 0: never.</summary>
        public double IdleTimeoutSeconds => Options.IdleTimeout.TotalSeconds;

        /// <summary>Bytes of unfinished messages all clients together may make the server hold; then the connection that needs more is closed (ServerBusy).</summary>
        public long ReceiveBudgetBytes => Options.ReceiveBudget.Limit;

        /// <summary>Messages a script-block handler failed on (it threw or wrote an error).</summary>
        public long HandlerErrors => _handlerErrors.Count;

        /// <summary>The last few handler failures, oldest first.</summary>
        public IReadOnlyList<Exception> RecentHandlerErrors => _handlerErrors.Recent;

        /// <summary>The module's handler of this server's messages, if one was given (-ScriptBlock); null otherwise.</summary>
        public object Handler { get; set; }

        /// <summary>The clients connected now, as channels a reply can be sent to.</summary>
        public IReadOnlyList<IpcChannel> Peers
        {
            get
            {
                lock (_gate)
                {
                    var peers = new List<IpcChannel>(_live.Count);
                    foreach (ISocketConnection c in _live) peers.Add(c.SenderView);
                    return peers;
                }
            }
        }

        public override ChannelState State
        {
            get
            {
                if (IsClosed) return ChannelState.Closed;
                lock (_gate) return _live.Count > 0 ? ChannelState.Connected : ChannelState.Listening;
            }
        }

        public void RecordHandlerError(Exception error) => _handlerErrors.Record(error);

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken) =>
            _inbound.TakeBatch(into, max, deadline, cancellationToken);

        BoundedQueue<IpcMessage> ISocketConnectionOwner.Inbound => _inbound;

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var frame = new OutgoingFrame((PsIpc.Transport.Framing.FrameType)format, payload);
            List<ISocketConnection> targets;
            lock (_gate)
            {
                while (_live.Count == 0)
                {
                    if (IsClosed) throw ClosedError();
                    if (!GateWait.Wait(_gate, deadline, cancellationToken))
                    {
                        throw new IpcException(IpcErrorKind.SendTimeout, $"Timed out waiting for a client to connect to '{Name}'.", Name);
                    }
                }
                targets = new List<ISocketConnection>(_live);
            }
            if (Broadcast.Send(targets, frame, deadline, cancellationToken, skipSmaller: true)) CountSent(frame.Payload.Length);
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            List<ISocketConnection> targets;
            lock (_gate) targets = new List<ISocketConnection>(_live);
            Broadcast.Flush(targets, deadline, cancellationToken, reportSoleLoss: false);
        }

        protected override void CloseCore(Deadline deadline)
        {
            _listener.Dispose();
            _idleTimer?.Dispose();
            if (_path != null) SocketEndpoints.TryDelete(_path);
            List<ISocketConnection> all;
            List<Socket> securing;
            lock (_gate)
            {
                all = new List<ISocketConnection>(_live);
                all.AddRange(_pending);
                securing = new List<Socket>(_securing);
                Monitor.PulseAll(_gate);
            }
            foreach (Socket socket in securing) socket.Dispose(); // their handshake threads end at once
            foreach (ISocketConnection connection in all)
            {
                try { connection.Close(deadline); } catch (IpcException) { } // that client is gone already
            }
            _inbound.CompleteAndClear();
        }

        // A plain program that shut down its sending side still waits for its replies (printf ... | nc -N):
        // a handler answers what came before the marker and then closes. Without a handler the end of the
        // client's input ends the connection, as a full close (indistinguishable from it) must.
        bool ISocketConnectionOwner.KeepsHalfClosed => Handler != null;

        IpcException ISocketConnectionOwner.OnOpened(ISocketConnection connection)
        {
            lock (_gate)
            {
                _pending.Remove(connection);
                if (IsClosed)
                {
                    return new IpcException(IpcErrorKind.ChannelClosed, $"The server '{Name}' is closing.", Name);
                }
                if (_live.Count >= MaxConnections)
                {
                    Interlocked.Increment(ref _refused);
                    return new IpcException(IpcErrorKind.ServerBusy,
                        $"The server '{Name}' has its {MaxConnections} clients (Start-IpcSocketServer -MaxConnections); try again later.", Name);
                }
                Interlocked.Increment(ref _accepted);
                _live.Add(connection);
                Monitor.PulseAll(_gate);
                return null;
            }
        }

        void ISocketConnectionOwner.OnEnded(ISocketConnection connection, IpcException fault)
        {
            lock (_gate)
            {
                _live.Remove(connection);
                _pending.Remove(connection);
                Monitor.PulseAll(_gate);
            }
            if (fault != null && !IsClosed) ReportFault(fault, connection.SenderView);
        }

        private void AcceptLoop()
        {
            while (!IsClosed)
            {
                Socket client;
                try
                {
                    client = _listener.Accept();
                }
                catch (Exception) when (IsClosed)
                {
                    return;
                }
                catch (SocketException e)
                {
                    ReportFault(new IpcException(IpcErrorKind.ConnectFailed, $"Accepting a client on '{Name}' failed: {e.Message}", Name, e), this);
                    Thread.Sleep(10); // e.g. out of file descriptors: do not spin
                    continue;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                try
                {
                    Admit(client);
                }
                catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is System.IO.IOException)
                {
                    client.Dispose(); // the client left before we looked at it
                }
                catch (Exception e)
                {
                    // Whatever else (out of memory or threads): this client is dropped, the server goes on. An
                    // exception escaping a thread would end the whole process.
                    lock (_gate) _securing.Remove(client);
                    client.Dispose();
                    ReportFault(new IpcException(IpcErrorKind.ConnectFailed, $"Taking a client on '{Name}' failed: {e.Message}", Name, e), this);
                }
            }
        }

        private void Admit(Socket client)
        {
            if (Transport == SocketTransport.Unix)
            {
                uint peer = UnixNative.GetPeerUserId(client);
                if (peer != _uid)
                {
                    Interlocked.Increment(ref _refused);
                    client.Dispose();
                    ReportFault(new IpcException(IpcErrorKind.AccessDenied,
                        $"A process of another user (uid {peer}) tried to connect to '{Name}'; it was refused.", Name), this);
                    return;
                }
                SocketBuffers.Enlarge(client); // as a pipe server does: a Unix socket should not be slower than a pipe
            }
            else
            {
                client.NoDelay = true; // request/reply: a small reply must not wait for Nagle
            }

            if (_security == null)
            {
                StartConnection(client, null);
                return;
            }
            lock (_gate)
            {
                if (IsClosed || RefuseWhenFull(client)) return;
                _securing.Add(client);
            }
            // TLS and the shared secret take round trips: asynchronous, bounded by the handshake timeout, so a
            // slow or silent client holds no thread and never holds up the accept loop or other clients.
            _ = SecureAsync(client);
        }

        // Never throws (it runs on the thread pool, where an escaping exception would end the process).
        private async System.Threading.Tasks.Task SecureAsync(Socket client)
        {
            System.IO.Stream secured = null;
            IpcException failure = null;
            try
            {
                secured = await SocketHandshake.ServerAsync(client, _security, Options.HandshakeTimeout, Name).ConfigureAwait(false);
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
                lock (_gate) _securing.Remove(client);
                if (failure != null)
                {
                    client.Dispose();
                    if (IsClosed) return;
                    if (failure.Kind == IpcErrorKind.AuthenticationFailed || failure.Kind == IpcErrorKind.AuthenticationRequired) Interlocked.Increment(ref _refused);
                    ReportFault(failure, this);
                    return;
                }
                StartConnection(client, secured);
            }
            catch (Exception e)
            {
                secured?.Dispose();
                client.Dispose();
                if (!(e is SocketException || e is ObjectDisposedException || e is System.IO.IOException) && !IsClosed)
                {
                    ReportFault(new IpcException(IpcErrorKind.ConnectFailed, $"Starting a connection on '{Name}' failed: {e.Message}", Name, e), this);
                }
            }
        }

        // Handshakes in progress are bounded too, so a flood of silent connections cannot pile up.
        // Call under _gate. True (and the client closed) when the server is full.
        private bool RefuseWhenFull(Socket client)
        {
            bool plain = Framing != SocketFraming.LengthPrefixed && _security == null;
            bool full = plain ? _live.Count >= MaxConnections : _live.Count + _pending.Count + _securing.Count >= 2 * MaxConnections;
            if (!full) return false;
            Interlocked.Increment(ref _refused);
            if (!plain && _security?.ServerUsesTls != true) TellBusy(client);
            client.Dispose();
            return true;
        }

        // A PsIpc client (Hello or AuthRequest first) reads an Error frame before anything else: say why it is
        // turned away (code 1, ServerBusy), if the socket takes it at once. Nothing for TLS or Line/Raw clients.
        private void TellBusy(Socket client)
        {
            try
            {
                if (!client.Poll(0, SelectMode.SelectWrite)) return;
                byte[] payload = ErrorFrame.Encode(IpcErrorKind.ServerBusy,
                    $"The server '{Name}' has as many clients and handshakes in progress as it takes (-MaxConnections {MaxConnections}); try again later.");
                client.Blocking = false;
                client.Send(PsIpc.Transport.Framing.FrameHeader.Frame(PsIpc.Transport.Framing.FrameType.Error, payload));
            }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }
        }

        private void StartConnection(Socket client, System.IO.Stream secured)
        {
            ISocketConnection connection;
            bool plain = Framing != SocketFraming.LengthPrefixed;
            lock (_gate)
            {
                if (IsClosed)
                {
                    secured?.Dispose();
                    client.Dispose();
                    return;
                }
                if (secured == null && RefuseWhenFull(client)) return;
                if (secured != null && plain && _live.Count >= MaxConnections)
                {
                    Interlocked.Increment(ref _refused); // a secured Line/Raw client counts only once it is a connection
                    secured.Dispose();
                    return;
                }
                if (plain)
                {
                    connection = new PlainSocketConnection(client, secured, this, Options, Framing, Name, isServerSide: true) { CountersOf = this };
                }
                else
                {
                    connection = new FramedSocketConnection(client, secured, this, Options, Name, isServerSide: true) { CountersOf = this };
                }
                connection.SenderView = new SocketPeer(this, connection);
                if (plain)
                {
                    Interlocked.Increment(ref _accepted);
                    _live.Add(connection);
                    Monitor.PulseAll(_gate);
                }
                else
                {
                    _pending.Add(connection);
                }
            }
            connection.Start();
        }

        private void CloseIdleConnections()
        {
            try
            {
                CloseIdleConnectionsNow();
            }
            catch (Exception e)
            {
                // A timer callback must not throw: that would end the process. Report it and sweep again later.
                if (!IsClosed) ReportFault(new IpcException(IpcErrorKind.ConnectFailed, $"Closing idle connections of '{Name}' failed: {e.Message}", Name, e), this);
            }
        }

        private void CloseIdleConnectionsNow()
        {
            if (IsClosed) return;
            long limit = (long)(Options.IdleTimeout.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            List<ISocketConnection> idle = null;
            lock (_gate)
            {
                foreach (ISocketConnection connection in _live)
                {
                    if (now - connection.LastActivity > limit) (idle ?? (idle = new List<ISocketConnection>())).Add(connection);
                }
            }
            if (idle == null) return;
            foreach (ISocketConnection connection in idle)
            {
                Interlocked.Increment(ref _idleClosed);
                connection.Expire(new IpcException(IpcErrorKind.IdleTimeout,
                    $"The connection from {connection.RemoteAddress} to '{Name}' was idle (no whole message either way) for {Options.IdleTimeout.TotalSeconds} s and was closed.", Name));
            }
        }

        private void ReportFault(IpcException fault, IpcChannel sender)
        {
            Interlocked.Increment(ref _connectionErrors);
            _lastConnectionError = fault;
            try
            {
                // Never wait: a server nobody reads must not hold a connection's thread for its error.
                _inbound.TryAdd(IpcMessage.ForFault(fault, sender), 64, Deadline.After(TimeSpan.Zero), CancellationToken.None);
            }
            catch (InvalidOperationException) { } // closed: nobody will read it
        }
    }
}
