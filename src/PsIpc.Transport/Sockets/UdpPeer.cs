using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// A UDP server's view of one sender (an address and port): the Sender of its messages. Sending to it
    /// sends one datagram per message to that address and port, from the server's socket. There is no
    /// connection: closing it only makes the server forget the peer (broadcasts skip it until it sends again).
    /// </summary>
    public sealed class UdpPeer : IpcChannel
    {
        private readonly UdpServerChannel _server;
        private long _lastHeardTicks;

        internal UdpPeer(UdpServerChannel server, IPEndPoint remoteEndPoint, int id)
            : base($"{server.Name}#{id}", server.Kind, ChannelRole.Peer, server.Options)
        {
            _server = server;
            RemoteEndPoint = remoteEndPoint;
            Heard();
        }

        /// <summary>The server this peer sent to.</summary>
        public UdpServerChannel Server => _server;

        public IPEndPoint RemoteEndPoint { get; }

        /// <summary>The peer's address and port: ip:port.</summary>
        public string RemoteAddress => UdpDatagrams.Format(RemoteEndPoint);

        /// <summary>Always false: a UDP sender is not authenticated, so its CliXml is never deserialized.</summary>
        public override bool IsAuthenticated => false;

        /// <summary>A UDP peer announces no process id.</summary>
        public override int PeerProcessId => 0;

        public SocketFraming Framing => _server.Framing;

        /// <summary>When the last datagram from this peer arrived.</summary>
        public DateTime LastHeard => DateTime.Now - TimeSpan.FromSeconds((Stopwatch.GetTimestamp() - LastHeardTicks) / (double)Stopwatch.Frequency);

        internal long LastHeardTicks => Interlocked.Read(ref _lastHeardTicks);

        internal void Heard() => Interlocked.Exchange(ref _lastHeardTicks, Stopwatch.GetTimestamp());

        public override ChannelState State => IsClosed || _server.IsClosed ? ChannelState.Closed : ChannelState.Connected;

        public override int PeerCount => State == ChannelState.Connected ? 1 : 0;

        public override string Address => _server.Address;

        public override bool CanReceive => false;

        public override IpcException NotSupportedError(ChannelOperation operation) => operation == ChannelOperation.Receive
            ? new IpcException(IpcErrorKind.OperationNotSupported,
                $"'{Name}' is a server's view of one peer; it sends replies. Receive from the server channel '{_server.Name}'.", Name)
            : base.NotSupportedError(operation);

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken) =>
            throw NotSupportedError(ChannelOperation.Receive);

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var frame = new OutgoingFrame((PsIpc.Transport.Framing.FrameType)format, payload);
            _server.SendTo(this, frame, cancellationToken);
            CountSent(frame.Payload.Length);
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            // Each datagram is handed to the system before Send returns.
        }

        protected override void CloseCore(Deadline deadline) => _server.Forget(this);
    }
}
