using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// A server's view of one connected peer, whatever the server (a pipe, a TCP or Unix socket): the Sender of
    /// the messages that peer sent. Sending to it replies to that peer only; closing it disconnects that peer.
    /// Receiving happens on the server.
    /// </summary>
    public sealed class IpcPeer : IpcChannel
    {
        private readonly MessageConnection _connection;

        internal IpcPeer(ServerChannel server, MessageConnection connection)
            : base($"{server.Name}#{connection.Id}", server.Kind, ChannelRole.Peer, server.Options)
        {
            Server = server;
            _connection = connection;
        }

        /// <summary>The server this peer is connected to.</summary>
        public ServerChannel Server { get; }

        /// <summary>The peer's address: ip:port for TCP, the server's path for a Unix socket or pipe.</summary>
        public string RemoteAddress => _connection.RemoteAddress;

        /// <summary>The process id the peer announced in its hello (the PsIpc protocol), 0 otherwise.</summary>
        public override int PeerProcessId => _connection.PeerProcessId;

        /// <summary>
        /// True when the peer is known: it runs as this user (pipes and Unix sockets, checked by the system), or it
        /// proved the server's shared secret (-Secret) over TLS or from this machine. CliXml is decoded only from
        /// authenticated peers.
        /// </summary>
        public override bool IsAuthenticated => _connection.Identity.IsAuthenticated;

        /// <summary>True when the connection is encrypted with TLS (the server's -Certificate).</summary>
        public bool IsEncrypted => _connection.Identity.IsEncrypted;

        /// <summary>How messages are cut on this connection (LengthPrefixed: the PsIpc protocol).</summary>
        public SocketFraming Framing => _connection.Framing.Kind;

        public override ChannelState State =>
            IsClosed || _connection.IsEnded ? (_connection.Fault != null ? ChannelState.Faulted : ChannelState.Closed) : ChannelState.Connected;

        public override int PeerCount => _connection.IsEnded ? 0 : 1;

        public override string Address => Server.Address;

        public override bool CanReceive => false;

        public override IpcException NotSupportedError(ChannelOperation operation) => operation == ChannelOperation.Receive
            ? new IpcException(IpcErrorKind.OperationNotSupported,
                $"'{Name}' is a server's view of one peer; it sends replies. Receive from the server channel '{Server.Name}'.", Name)
            : base.NotSupportedError(operation);

        /// <summary>
        /// A message sent to the peer answers its oldest unanswered request, if it sent one with Invoke-IpcRequest
        /// (docs/protocol.md 4): a Receive-IpcMessage/Send-IpcMessage loop then serves requests too.
        /// </summary>
        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            _connection.SendMessage(format, payload, deadline, cancellationToken);
            CountSent(payload.Length);
            Server.PeerSent(payload.Length);
        }

        /// <summary>True when the peer announced correlation ids (a PsIpc client of this version).</summary>
        public override bool SupportsCorrelation => _connection.PeerSupportsCorrelation;

        public override long LateRepliesDropped => _connection.LateRepliesDropped;

        protected override void ReplyCore(IpcMessage request, MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            _connection.Reply(request, format, payload, deadline, cancellationToken);
            CountSent(payload.Length);
            Server.PeerSent(payload.Length);
        }

        protected override bool ReplyErrorCore(IpcMessage request, IpcErrorKind kind, string message, Deadline deadline, CancellationToken cancellationToken) =>
            _connection.ReplyError(request, kind, message, deadline, cancellationToken);

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken) =>
            throw NotSupportedError(ChannelOperation.Receive);

        public override void Flush(Deadline deadline, CancellationToken cancellationToken) =>
            _connection.Flush(deadline, cancellationToken);

        protected override void CloseCore(Deadline deadline) => _connection.Close(deadline);
    }
}
