using System;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Sockets
{
    /// <summary>The client end of a socket: one connection to a TCP or Unix domain socket server.</summary>
    public sealed class SocketClientChannel : ConnectionClientChannel
    {
        private readonly string _address;
        private Socket? _socket;

        private SocketClientChannel(string name, string address, SocketTransport transport, SocketFraming framing, ChannelOptions? options)
            : base(name, transport == SocketTransport.Tcp ? ChannelKind.Tcp : ChannelKind.Unix, options)
        {
            _address = address;
            Transport = transport;
            Framing = framing;
        }

        /// <summary>Connects to a TCP server and, with LengthPrefixed framing, completes the PsIpc handshake, until the deadline.</summary>
        /// <exception cref="IpcException">ConnectionRefused, ConnectTimeout, HostNotFound, ServerBusy, ProtocolError...</exception>
        /// <param name="security">A shared secret and/or TLS the server asks for; null for none.</param>
        public static SocketClientChannel ConnectTcp(string host, int port, SocketFraming framing, Deadline deadline, CancellationToken cancellationToken,
            ChannelOptions? options = null, SocketSecurity? security = null)
        {
            if (port < 1 || port > 65535) throw new ArgumentOutOfRangeException(nameof(port));
            string name = $"tcp:{host}:{port}";
            deadline = AtLeastOneSecond(deadline);
            Socket socket = SocketEndpoints.ConnectTcp(host, port, name, deadline, cancellationToken);
            socket.NoDelay = true;
            var identity = new PeerIdentity($"{host}:{port}", null, SocketNames.IsLoopback(socket), PeerAuthentication.None);
            var channel = new SocketClientChannel(name, $"{host}:{port}", SocketTransport.Tcp, framing, options);
            return channel.Open(socket, identity, host, security, deadline, cancellationToken);
        }

        /// <summary>Connects to a Unix domain socket server (run by this user).</summary>
        /// <exception cref="IpcException">ConnectionRefused, SocketPathTooLong, AccessDenied, ConnectTimeout, ServerBusy...</exception>
        public static SocketClientChannel ConnectUnix(string path, SocketFraming framing, Deadline deadline, CancellationToken cancellationToken,
            ChannelOptions? options = null, SocketSecurity? security = null)
        {
            string full = System.IO.Path.GetFullPath(path);
            string name = $"unix:{full}";
            deadline = AtLeastOneSecond(deadline);
            Socket socket = SocketEndpoints.ConnectUnix(full, name, deadline, cancellationToken); // checks the server's uid
            var identity = new PeerIdentity(full, UnixNative.EffectiveUserId, true, PeerAuthentication.SameUser);
            var channel = new SocketClientChannel(name, full, SocketTransport.Unix, framing, options);
            return channel.Open(socket, identity, "localhost", security, deadline, cancellationToken);
        }

        // -TimeoutSeconds 0 tries once; one try of a local connect plus a handshake needs a round trip, not zero time.
        private static Deadline AtLeastOneSecond(Deadline deadline) =>
            !deadline.IsInfinite && deadline.RemainingMilliseconds < 1000 ? Deadline.After(TimeSpan.FromSeconds(1)) : deadline;

        private SocketClientChannel Open(Socket socket, PeerIdentity identity, string host, SocketSecurity? security, Deadline deadline, CancellationToken cancellationToken)
        {
            _socket = socket;
            System.IO.Stream stream;
            Deadline handshake = deadline.IsInfinite ? Deadline.After(Options.HandshakeTimeout) : deadline;
            if (security != null && security.ClientNeedsHandshake)
            {
                stream = SocketHandshake.Client(socket, security, host, Name, handshake, cancellationToken); // disposes the socket on failure
                if (security.HasSecret && Transport == SocketTransport.Tcp) identity.Authentication = PeerAuthentication.SharedSecret;
                identity.IsEncrypted = security.UseTls;
            }
            else
            {
                stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            }
            Open(new ConnectedStream(stream, socket, identity), MessageFraming.For(Framing), handshake, cancellationToken);
            return this;
        }

        public SocketTransport Transport { get; }
        public SocketFraming Framing { get; }

        /// <summary>The local end: ip:port for TCP.</summary>
        public string? LocalAddress
        {
            get
            {
                try { return _socket?.LocalEndPoint?.ToString(); }
                catch (ObjectDisposedException) { return null; }
            }
        }

        /// <summary>True when the connection is encrypted with TLS (-UseTls).</summary>
        public bool IsEncrypted => Connection.Identity.IsEncrypted;

        public override string Address => _address;

        private protected override IpcException HandshakeTimedOut() =>
            new IpcException(IpcErrorKind.ConnectTimeout,
                $"Connected to {_address} but the server did not answer the PsIpc handshake in time (is it a PsIpc server with -Framing LengthPrefixed?).", Name);

        // A PsIpc socket server that is full says PipeBusy in the protocol's words: a socket client calls it ServerBusy.
        private protected override IpcException Translate(IpcException error) =>
            error.Kind == IpcErrorKind.PipeBusy ? new IpcException(IpcErrorKind.ServerBusy, error.Message, Name, error) : error;
    }
}
