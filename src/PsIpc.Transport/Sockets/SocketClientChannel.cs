using System;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;

namespace PsIpc.Transport.Sockets
{
    /// <summary>The client end of a socket: one connection to a TCP or Unix domain socket server.</summary>
    public sealed class SocketClientChannel : ConnectionClientChannel, ISocketConnectionOwner
    {
        private readonly string _address;
        private SocketSecurity _security;
        private bool _serverIsLocal;

        private SocketClientChannel(string name, string address, SocketTransport transport, SocketFraming framing, ChannelOptions options)
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
            ChannelOptions options = null, SocketSecurity security = null)
        {
            if (port < 1 || port > 65535) throw new ArgumentOutOfRangeException(nameof(port));
            string name = $"tcp:{host}:{port}";
            deadline = AtLeastOneSecond(deadline);
            Socket socket = SocketEndpoints.ConnectTcp(host, port, deadline, cancellationToken, name);
            socket.NoDelay = true;
            var channel = new SocketClientChannel(name, $"{host}:{port}", SocketTransport.Tcp, framing, options);
            return channel.Open(socket, host, security, deadline, cancellationToken);
        }

        /// <summary>Connects to a Unix domain socket server (run by this user).</summary>
        /// <exception cref="IpcException">ConnectionRefused, SocketPathTooLong, AccessDenied, ConnectTimeout, ServerBusy...</exception>
        public static SocketClientChannel ConnectUnix(string path, SocketFraming framing, Deadline deadline, CancellationToken cancellationToken,
            ChannelOptions options = null, SocketSecurity security = null)
        {
            string full = System.IO.Path.GetFullPath(path);
            string name = $"unix:{full}";
            deadline = AtLeastOneSecond(deadline);
            Socket socket = SocketEndpoints.ConnectUnix(full, deadline, cancellationToken, name);
            var channel = new SocketClientChannel(name, full, SocketTransport.Unix, framing, options);
            return channel.Open(socket, "localhost", security, deadline, cancellationToken);
        }

        // -TimeoutSeconds 0 tries once; one try of a local connect plus a handshake needs a round trip, not zero time.
        private static Deadline AtLeastOneSecond(Deadline deadline) =>
            !deadline.IsInfinite && deadline.RemainingMilliseconds < 1000 ? Deadline.After(TimeSpan.FromSeconds(1)) : deadline;

        private SocketClientChannel Open(Socket socket, string host, SocketSecurity security, Deadline deadline, CancellationToken cancellationToken)
        {
            System.IO.Stream secured = null;
            if (security != null && security.ClientNeedsHandshake)
            {
                Deadline handshakeDeadline = deadline.IsInfinite ? Deadline.After(Options.HandshakeTimeout) : deadline;
                _serverIsLocal = SocketNames.IsLoopback(socket);
                secured = SocketHandshake.Client(socket, security, host, handshakeDeadline, cancellationToken, Name); // disposes the socket on failure
                _security = security;
            }
            if (Framing == SocketFraming.LengthPrefixed)
            {
                Connection = new FramedSocketConnection(socket, secured, this, Options, Name, isServerSide: false) { SenderView = this, CountersOf = this };
            }
            else
            {
                Connection = new PlainSocketConnection(socket, secured, this, Options, Framing, Name, isServerSide: false) { SenderView = this, CountersOf = this };
            }
            SocketConnection.Start();
            try
            {
                Deadline handshake = deadline.IsInfinite ? Deadline.After(Options.HandshakeTimeout) : deadline;
                if (!SocketConnection.WaitForOpen(handshake, cancellationToken))
                {
                    throw new IpcException(IpcErrorKind.ConnectTimeout,
                        $"Connected to {_address} but the server did not answer the PsIpc handshake in time (is it a PsIpc server with -Framing LengthPrefixed?).", Name);
                }
            }
            catch (IpcException e) when (e.Kind == IpcErrorKind.PipeBusy)
            {
                Connection.Abort(null);
                throw new IpcException(IpcErrorKind.ServerBusy, e.Message, Name, e);
            }
            catch
            {
                Connection.Abort(null);
                throw;
            }
            return this;
        }

        private ISocketConnection SocketConnection => (ISocketConnection)Connection;

        public SocketTransport Transport { get; }
        public SocketFraming Framing { get; }

        /// <summary>The local end: ip:port for TCP.</summary>
        public string LocalAddress
        {
            get
            {
                try { return SocketConnection.Socket.LocalEndPoint?.ToString(); }
                catch (ObjectDisposedException) { return null; }
            }
        }

        /// <summary>
        /// True when the server is known: it runs as this user (a Unix socket, checked with SO_PEERCRED), or it
        /// proved the shared secret (-Secret) over TLS or on this machine. CliXml is decoded only from
        /// authenticated peers.
        /// </summary>
        public override bool IsAuthenticated =>
            Transport == SocketTransport.Unix || (_security?.HasSecret ?? false) && (_security.UseTls || _serverIsLocal);

        /// <summary>True when the connection is encrypted with TLS (-UseTls).</summary>
        public bool IsEncrypted => _security?.UseTls ?? false;

        public override string Address => _address;

        BoundedQueue<IpcMessage> ISocketConnectionOwner.Inbound => InboundQueue;

        IpcException ISocketConnectionOwner.OnOpened(ISocketConnection connection) => null;

        bool ISocketConnectionOwner.KeepsHalfClosed => false; // the server is done: so is this end

        void ISocketConnectionOwner.OnEnded(ISocketConnection connection, IpcException fault)
        {
            if (fault != null && fault.Kind == IpcErrorKind.PipeBusy) fault = new IpcException(IpcErrorKind.ServerBusy, fault.Message, Name, fault);
            OnConnectionEnded(fault);
        }
    }
}
