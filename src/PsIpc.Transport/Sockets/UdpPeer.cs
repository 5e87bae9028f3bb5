using System;
using System.Diagnostics;
using System.Net;
using System.Threading;
using PsIpc.Transport.Channels;

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
        public bool IsAuthenticated => false;

        /// <summary>A UDP peer announces no process id.</summary>
        public int PeerProcessId => 0;

        public SocketFraming Framing => _server.Framing;

        /// <summary>When the last datagram from this peer arrived.</summary>
        public DateTime LastHeard => DateTime.Now - TimeSpan.FromSeconds((Stopwatch.GetTimestamp() - LastHeardTicks) / (double)Stopwatch.Frequency);

        internal long LastHeardTicks => Interlocked.Read(ref _lastHeardTicks);

        internal void Heard() => Interlocked.Exchange(ref _lastHeardTicks, Stopwatch.GetTimestamp());

        public override ChannelState State => IsClosed || _server.IsClosed ? ChannelState.Closed : ChannelState.Connected;

        public override int PeerCount => State == ChannelState.Connected ? 1 : 0;

        public override string Address => _server.Address;

        internal override BoundedQueue<IpcMessage> Inbound => null;

        internal override void SendCore(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
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
