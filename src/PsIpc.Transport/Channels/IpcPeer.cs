using System.Threading;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// A server's view of one connected peer: the Sender of the messages that peer sent. Sending to it
    /// replies to that peer only; closing it disconnects that peer. Receiving happens on the server.
    /// </summary>
    public sealed class IpcPeer : IpcChannel
    {
        private readonly StreamConnection _connection;
        private readonly IpcChannel _server;

        internal IpcPeer(IpcChannel server, StreamConnection connection)
            : base($"{server.Name}#{connection.Id}", server.Kind, ChannelRole.Peer, server.Options)
        {
            _server = server;
            _connection = connection;
        }

        /// <summary>The server channel this peer is connected to.</summary>
        public IpcChannel Server => _server;

        public int PeerProcessId => _connection.PeerHello?.ProcessId ?? 0;

        public override ChannelState State =>
            IsClosed || _connection.IsEnded ? (_connection.Fault != null ? ChannelState.Faulted : ChannelState.Closed) : ChannelState.Connected;

        public override int PeerCount => _connection.IsEnded ? 0 : 1;

        public override string Address => _server.Address;

        internal override BoundedQueue<IpcMessage> Inbound => null;

        internal override void SendCore(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
            _connection.Enqueue(frame, deadline, cancellationToken);
            CountSent(frame.Payload.Length);
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken) =>
            _connection.Flush(deadline, cancellationToken);

        protected override void CloseCore(Deadline deadline) => _connection.Close(deadline);
    }
}
