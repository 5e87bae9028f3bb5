using System;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// A socket server (TCP or Unix domain) that accepts many clients in the background. Receive merges what
    /// all clients send, in arrival order, each message's Sender being the <see cref="IpcPeer"/> to reply to;
    /// Send goes to every connected client (waiting for the first one when none is connected). Unlike a pipe
    /// server it has no lifetime client count: it serves until it is closed. What it shares with a pipe server
    /// (admission, peers, broadcast, idle sweep) is <see cref="ServerChannel"/>; this class only listens,
    /// accepts and runs the TLS / shared-secret stage.
    /// </summary>
    public sealed class SocketServerChannel : ServerChannel, ISocketServer
    {
        /// <summary>Default of -MaxConnections: clients connected at the same time.</summary>
        public const int DefaultMaxConnections = 1000;

        private readonly SocketSecurity? _security;
        private readonly Socket _listener;
        private readonly string? _path;

        private SocketServerChannel(string name, Socket listener, SocketTransport transport, SocketFraming framing, int maxConnections,
            string? path, ChannelOptions? options, SocketSecurity? security)
            : base(name, transport == SocketTransport.Tcp ? ChannelKind.Tcp : ChannelKind.Unix, options, MessageFraming.For(framing), sweepIdle: true)
        {
            if (maxConnections < 1) throw new ArgumentOutOfRangeException(nameof(maxConnections), "MaxConnections must be at least 1.");
            _listener = listener;
            _path = path;
            _security = security != null && security.ServerNeedsHandshake ? security : null;
            if (_security?.HasSecret == true) _ = _security.Key; // derived once now, not while the first client waits
            Transport = transport;
            Framing = framing;
            MaxConnections = maxConnections;
            if (transport == SocketTransport.Tcp)
            {
                var endPoint = (IPEndPoint)listener.LocalEndPoint;
                IPAddress = endPoint.Address;
                Port = endPoint.Port;
            }
            StartAccepting();
        }

        /// <summary>
        /// Listens on a TCP address and port (0: a free port, see <see cref="Port"/>). A loopback address is
        /// served as it is; any other lets other machines connect and requires a shared secret
        /// (<paramref name="security"/>.Secret), or it fails closed.
        /// </summary>
        /// <param name="security">A shared secret every client must prove it knows, and/or a TLS certificate; null for none.</param>
        /// <exception cref="IpcException">AuthenticationRequired, AddressInUse, ConnectFailed.</exception>
        public static SocketServerChannel ListenTcp(string? name, IPAddress address, int port, SocketFraming framing, int maxConnections, ChannelOptions? options,
            SocketSecurity? security = null)
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
        public static SocketServerChannel ListenUnix(string? name, string path, SocketFraming framing, int maxConnections, ChannelOptions? options,
            SocketSecurity? security = null)
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
        public IPAddress? IPAddress { get; }

        /// <summary>The TCP port listened on (the one chosen when -Port was 0); 0 for a Unix socket.</summary>
        public int Port { get; }

        /// <summary>The Unix socket path (null for TCP).</summary>
        public string? Path => _path;

        /// <summary>Where clients connect: address:port for TCP, the socket path for Unix.</summary>
        public override string Address => Transport == SocketTransport.Tcp ? $"{FormatAddress(IPAddress!)}:{Port}" : _path!;

        /// <summary>Clients connected at the same time, at most; later ones are refused until some leave.</summary>
        public int MaxConnections { get; }

        /// <summary>Clients connected now (the same as PeerCount).</summary>
        public int ClientCount => PeerCount;

        /// <summary>True when every client must prove it knows the shared secret (-Secret).</summary>
        public bool RequiresSecret => _security?.HasSecret ?? false;

        /// <summary>True when connections are encrypted with TLS (-Certificate).</summary>
        public bool UsesTls => _security?.ServerUsesTls ?? false;

        /// <summary>Seconds a client has to finish the handshake (Hello, TLS, shared secret).</summary>
        public double HandshakeTimeoutSeconds => Options.HandshakeTimeout.TotalSeconds;

        /// <summary>Seconds a connection may stay idle (no whole message either way) before it is closed; 0: never.</summary>
        public double IdleTimeoutSeconds => Options.IdleTimeout.TotalSeconds;

        /// <summary>Bytes of messages all clients together may make the server hold, unfinished or waiting to be received; then the connection that needs more is closed (ServerBusy).</summary>
        public long ReceiveBudgetBytes => Options.ReceiveBudget!.Limit;

        private protected override int Capacity => MaxConnections;

        private protected override bool HasSecurityStage => _security != null;

        private protected override bool UsesTlsStage => _security?.ServerUsesTls == true;

        private protected override bool BroadcastSkipsSmallerPeers => true;

        private protected override IpcException? RefusalAtOpen(int live, long accepted) =>
            live >= MaxConnections
                ? new IpcException(IpcErrorKind.ServerBusy,
                    $"The server '{Name}' has its {MaxConnections} clients (Start-IpcSocketServer -MaxConnections); try again later.", Name)
                : null;

        // Replies to one client count as the server's sends too (Get-IpcSocketServer's Out column).
        private protected override void OnPeerSent(int bytes) => CountSent(bytes);

        private protected override ConnectedStream? AcceptNext()
        {
            Socket client = _listener.Accept();
            try
            {
                PeerIdentity identity;
                if (Transport == SocketTransport.Unix)
                {
                    uint peer = UnixNative.GetPeerUserId(client);
                    identity = new PeerIdentity(_path!, peer, true, PeerAuthentication.SameUser);
                    if (!IsOtherUser(identity)) SocketBuffers.Enlarge(client); // as a pipe server does: a Unix socket should not be slower than a pipe
                }
                else
                {
                    client.NoDelay = true; // request/reply: a small reply must not wait for Nagle
                    identity = new PeerIdentity(SocketNames.RemoteOf(client), null, SocketNames.IsLoopback(client), PeerAuthentication.None);
                }
                if (_security != null) return new ConnectedStream(new NetworkStream(client, ownsSocket: true), client, identity);
                var sniff = new HttpSniffStream(new NetworkStream(client, ownsSocket: true));
                return new ConnectedStream(sniff, client, identity) { Sniff = sniff };
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }

        private protected override async Task<ConnectedStream> SecureAsync(ConnectedStream raw)
        {
            SocketSecurity security = _security!;
            System.IO.Stream secured = await SocketHandshake.ServerAsync(raw.Socket!, security, Options.HandshakeTimeout, Name).ConfigureAwait(false);
            PeerIdentity identity = raw.Identity;
            if (security.HasSecret) identity.Authentication = PeerAuthentication.SharedSecret;
            if (Transport == SocketTransport.Unix) identity.Authentication = PeerAuthentication.SameUser;
            identity.IsEncrypted = security.ServerUsesTls;
            return new ConnectedStream(secured, raw.Socket, identity);
        }

        private protected override void StopListening()
        {
            _listener.Dispose();
            if (_path != null) SocketEndpoints.TryDelete(_path);
        }
    }
}
