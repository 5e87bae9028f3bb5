using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// A server's view of one connected peer: the Sender of the messages that peer sent. Sending to it
    /// replies to that peer only; closing it disconnects that peer. Receiving happens on the server.
    /// </summary>
    public abstract class ConnectionPeer : IpcChannel
    {
        private readonly IConnection _connection;

        internal ConnectionPeer(IpcChannel server, IConnection connection)
            : base($"{server.Name}#{connection.Id}", server.Kind, ChannelRole.Peer, server.Options)
        {
            ServerChannel = server;
            _connection = connection;
        }

        /// <summary>The server channel this peer is connected to (each kind of peer shows it as its Server).</summary>
        private protected IpcChannel ServerChannel { get; }

        /// <summary>The process id the peer announced in its Hello (the PsIpc protocol), 0 otherwise.</summary>
        public override int PeerProcessId => _connection.PeerProcessId;

        public override ChannelState State =>
            IsClosed || _connection.IsEnded ? (_connection.Fault != null ? ChannelState.Faulted : ChannelState.Closed) : ChannelState.Connected;

        public override int PeerCount => _connection.IsEnded ? 0 : 1;

        public override string Address => ServerChannel.Address;

        public override bool CanReceive => false;

        public override IpcException NotSupportedError(ChannelOperation operation) => operation == ChannelOperation.Receive
            ? new IpcException(IpcErrorKind.OperationNotSupported,
                $"'{Name}' is a server's view of one peer; it sends replies. Receive from the server channel '{ServerChannel.Name}'.", Name)
            : base.NotSupportedError(operation);

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken) =>
            throw NotSupportedError(ChannelOperation.Receive);

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var frame = new OutgoingFrame((PsIpc.Transport.Framing.FrameType)format, payload);
            _connection.Enqueue(frame, deadline, cancellationToken);
            CountSent(frame.Payload.Length);
            OnSent(frame.Payload.Length);
        }

        /// <summary>A reply went out (a socket server counts its peers' sends as its own).</summary>
        private protected virtual void OnSent(int bytes)
        {
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken) =>
            _connection.Flush(deadline, cancellationToken);

        protected override void CloseCore(Deadline deadline) => _connection.Close(deadline);
    }

    /// <summary>A pipe server's view of one connected client.</summary>
    public sealed class IpcPeer : ConnectionPeer
    {
        internal IpcPeer(IpcChannel server, StreamConnection connection)
            : base(server, connection)
        {
        }

        /// <summary>The server channel this peer is connected to.</summary>
        public IpcChannel Server => ServerChannel;
    }
}
