using System.Threading;
using PsIpc.Transport.Channels;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// A socket server's view of one connected client: the Sender of that client's messages. Sending to it
    /// replies to that client only; closing it disconnects that client. Receiving happens on the server.
    /// </summary>
    public sealed class SocketPeer : ConnectionPeer
    {
        private readonly ISocketConnection _connection;
        private readonly SocketServerChannel _server;
        private readonly bool _loopback;

        internal SocketPeer(SocketServerChannel server, ISocketConnection connection)
            : base(server, connection)
        {
            _server = server;
            _connection = connection;
            _loopback = SocketNames.IsLoopback(connection.Socket);
        }

        /// <summary>The server this client is connected to.</summary>
        public SocketServerChannel Server => _server;

        /// <summary>The client's address: ip:port for TCP, the server's path for a Unix socket.</summary>
        public string RemoteAddress => _connection.RemoteAddress;

        /// <summary>
        /// True when the client is known: it runs as this user (a Unix socket, checked with SO_PEERCRED), or it
        /// proved the server's shared secret (-Secret) over TLS or from this machine (without TLS, the messages
        /// after the exchange could come from someone on the network path). CliXml is decoded only from
        /// authenticated peers.
        /// </summary>
        public override bool IsAuthenticated =>
            _server.Transport == SocketTransport.Unix || _server.RequiresSecret && (_server.UsesTls || _loopback);

        /// <summary>True when the connection is encrypted with TLS (the server's -Certificate).</summary>
        public bool IsEncrypted => _server.UsesTls;

        public SocketFraming Framing => _server.Framing;

        private protected override void OnSent(int bytes) => _server.CountSent(bytes);
    }
}
