using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// A socket server (TCP or Unix domain) that accepts many clients in the background. Receive merges what
    /// all clients send, in arrival order, each message's Sender being the <see cref="SocketPeer"/> to reply
    /// to; Send goes to every connected client (waiting for the first one when none is connected). Unlike a
    /// pipe server it has no lifetime client count: it serves until it is closed.
    /// </summary>
    public sealed class SocketServerChannel : IpcChannel, ISocketConnectionOwner
    {
        /// <summary>Default of -MaxConnections: clients connected at the same time.</summary>
        public const int DefaultMaxConnections = 1000;

        private const int RecentErrorsKept = 20;

        private readonly object _gate = new object();
        private readonly List<ISocketConnection> _live = new List<ISocketConnection>();
        private readonly List<ISocketConnection> _pending = new List<ISocketConnection>();
        private readonly List<Exception> _recentHandlerErrors = new List<Exception>();
        private readonly BoundedQueue<IpcMessage> _inbound;
        private readonly Socket _listener;
        private readonly Thread _acceptThread;
        private readonly string _path;
        private readonly uint _uid;
        private long _accepted, _refused, _connectionErrors, _handlerErrors;
        private IpcException _lastConnectionError;

        private SocketServerChannel(string name, Socket listener, SocketTransport transport, SocketFraming framing, int maxConnections,
            string path, ChannelOptions options)
            : base(name, transport == SocketTransport.Tcp ? "Tcp" : "Unix", ChannelRole.Server, options)
        {
            if (maxConnections < 1) throw new ArgumentOutOfRangeException(nameof(maxConnections), "MaxConnections must be at least 1.");
            _listener = listener;
            _path = path;
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
            _acceptThread = new Thread(AcceptLoop, 128 * 1024) { IsBackground = true, Name = $"PsIpc accept {name}" };
            _acceptThread.Start();
        }

        /// <summary>
        /// Listens on a TCP address and port (0: a free port, see <see cref="Port"/>). Only loopback addresses
        /// are served: any other needs authentication, which this version does not implement, so it fails closed.
        /// </summary>
        /// <exception cref="IpcException">AuthenticationRequired, AddressInUse, ConnectFailed.</exception>
        public static SocketServerChannel ListenTcp(string name, IPAddress address, int port, SocketFraming framing, int maxConnections, ChannelOptions options)
        {
            if (address == null) throw new ArgumentNullException(nameof(address));
            if (port < 0 || port > 65535) throw new ArgumentOutOfRangeException(nameof(port));
            string display = name ?? $"tcp:{FormatAddress(address)}:{port}";
            if (!IPAddress.IsLoopback(address))
            {
                throw new IpcException(IpcErrorKind.AuthenticationRequired,
                    $"Serving {address} would let other machines connect, and that requires authentication (a shared secret checked by HMAC), " +
                    "which this version of PsIpc does not implement yet. Serve a loopback address (127.0.0.1, the default, or ::1) or a Unix socket (-Path).",
                    display);
            }
            Socket listener = SocketEndpoints.ListenTcp(address, port, display);
            int bound = ((IPEndPoint)listener.LocalEndPoint).Port;
            return new SocketServerChannel(name ?? $"tcp:{FormatAddress(address)}:{bound}", listener, SocketTransport.Tcp, framing, maxConnections, null, options);
        }

        /// <summary>Listens on a Unix domain socket at <paramref name="path"/> (mode 0600; peers of other users are refused).</summary>
        /// <exception cref="IpcException">SocketPathTooLong, AddressInUse.</exception>
        public static SocketServerChannel ListenUnix(string name, string path, SocketFraming framing, int maxConnections, ChannelOptions options)
        {
            if (string.IsNullOrEmpty(path)) throw new ArgumentNullException(nameof(path));
            if (UnixNative.IsWindows) throw new PlatformNotSupportedException("Unix domain socket servers are supported on Linux and macOS only.");
            string full = System.IO.Path.GetFullPath(path);
            string display = name ?? $"unix:{full}";
            Socket listener = SocketEndpoints.ListenUnix(full, display);
            return new SocketServerChannel(display, listener, SocketTransport.Unix, framing, maxConnections, full, options);
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

        /// <summary>Messages a script-block handler failed on (it threw or wrote an error).</summary>
        public long HandlerErrors => Interlocked.Read(ref _handlerErrors);

        /// <summary>The last few handler failures, oldest first.</summary>
        public IReadOnlyList<Exception> RecentHandlerErrors { get { lock (_recentHandlerErrors) return _recentHandlerErrors.ToArray(); } }

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

        /// <summary>Raised when Close starts, before any connection is closed (a handler stops here).</summary>
        public event EventHandler<Deadline> Closing;

        public void RecordHandlerError(Exception error)
        {
            Interlocked.Increment(ref _handlerErrors);
            lock (_recentHandlerErrors)
            {
                _recentHandlerErrors.Add(error);
                if (_recentHandlerErrors.Count > RecentErrorsKept) _recentHandlerErrors.RemoveAt(0);
            }
        }

        internal override BoundedQueue<IpcMessage> Inbound => _inbound;

        BoundedQueue<IpcMessage> ISocketConnectionOwner.Inbound => _inbound;

        internal override void SendCore(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
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
            IpcException failure = null;
            int delivered = 0;
            foreach (ISocketConnection connection in targets)
            {
                try
                {
                    connection.Enqueue(frame, deadline, cancellationToken);
                    delivered++;
                }
                catch (IpcException e) when ((e.Kind == IpcErrorKind.PeerDisconnected || e.Kind == IpcErrorKind.MessageTooLarge) && targets.Count > 1)
                {
                    failure = e; // a broadcast skips clients that just left (or accept less), unless all do
                }
            }
            if (delivered == 0 && failure != null) throw failure;
            if (delivered > 0) CountSent(frame.Payload.Length);
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            List<ISocketConnection> targets;
            lock (_gate) targets = new List<ISocketConnection>(_live);
            foreach (ISocketConnection connection in targets)
            {
                try
                {
                    connection.Flush(deadline, cancellationToken);
                }
                catch (IpcException e) when (e.Kind == IpcErrorKind.PeerDisconnected) { }
            }
        }

        protected override void CloseCore(Deadline deadline)
        {
            try
            {
                Closing?.Invoke(this, deadline);
            }
            finally
            {
                _listener.Dispose();
                if (_path != null) SocketEndpoints.TryDelete(_path);
                List<ISocketConnection> all;
                lock (_gate)
                {
                    all = new List<ISocketConnection>(_live);
                    all.AddRange(_pending);
                    Monitor.PulseAll(_gate);
                }
                foreach (ISocketConnection connection in all)
                {
                    try { connection.Close(deadline); } catch (IpcException) { } // that client is gone already
                }
                _inbound.CompleteAndClear();
            }
        }

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

            ISocketConnection connection;
            bool plain = Framing != SocketFraming.LengthPrefixed;
            lock (_gate)
            {
                // Handshakes in progress are bounded too, so a flood of silent connections cannot pile up.
                bool full = plain ? _live.Count >= MaxConnections : _live.Count + _pending.Count >= 2 * MaxConnections;
                if (IsClosed || full)
                {
                    if (full) Interlocked.Increment(ref _refused);
                    client.Dispose();
                    return;
                }
                if (plain)
                {
                    var c = new PlainSocketConnection(client, this, Options, Framing, Name, isServerSide: true) { CountersOf = this };
                    connection = c;
                }
                else
                {
                    var c = new FramedSocketConnection(client, this, Options, Name, isServerSide: true) { CountersOf = this };
                    connection = c;
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
