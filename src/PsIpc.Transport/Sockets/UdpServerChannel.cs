using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// A UDP server: one bound socket, each datagram one message (<see cref="UdpDatagrams"/>). Receive gives
    /// the messages of every sender in arrival order, each message's Sender being the <see cref="UdpPeer"/>
    /// of its source address and port, to which a reply is one datagram. Sending to the server sends to every
    /// peer heard from (the last <see cref="MaxConnections"/> of them). UDP is lossy: nothing here waits for a
    /// reader; a datagram that finds the receive queue full is dropped and counted (<see cref="DroppedQueueFull"/>).
    /// </summary>
    public sealed class UdpServerChannel : IpcChannel, ISocketServer
    {

        // How often the receive loop looks whether the server closed, in case closing the socket did not
        // wake a blocked receive (it does on Linux; this is the safety net).
        private const int ReceivePollMilliseconds = 1000;

        private readonly object _gate = new object();
        private readonly Dictionary<IPEndPoint, UdpPeer> _peers = new Dictionary<IPEndPoint, UdpPeer>();
        private readonly BoundedQueue<IpcMessage> _inbound;
        private readonly Socket _socket;
        private readonly Thread _receiver;
        private readonly DatagramDrops _drops;
        private long _peersSeen;
        private int _nextPeerId;

        private UdpServerChannel(string name, Socket socket, SocketFraming framing, int maxPeers, ChannelOptions? options)
            : base(name, ChannelKind.Udp, ChannelRole.Server, options)
        {
            if (maxPeers < 1) throw new ArgumentOutOfRangeException(nameof(maxPeers), "MaxConnections must be at least 1.");
            _socket = socket;
            Framing = framing;
            MaxConnections = maxPeers;
            var endPoint = (IPEndPoint)socket.LocalEndPoint;
            IPAddress = endPoint.Address;
            Port = endPoint.Port;
            _socket.ReceiveTimeout = ReceivePollMilliseconds;
            _inbound = new BoundedQueue<IpcMessage>(Options.ReceiveBufferMessages, Options.ReceiveBufferBytes);
            _drops = new DatagramDrops(_inbound, this, throttle: true); // anyone can send to a server
            _receiver = new Thread(ReceiveLoop, 256 * 1024) { IsBackground = true, Name = $"PsIpc UDP receiver {name}" };
            _receiver.Start();
        }

        /// <summary>
        /// Binds a UDP address and port (0: a free port, see <see cref="Port"/>). UDP peers are not
        /// authenticated, so only loopback addresses are served: any other fails closed.
        /// </summary>
        /// <param name="maxPeers">Peers remembered for replies and broadcasts; the least recently heard is forgotten beyond it.</param>
        /// <exception cref="IpcException">AuthenticationRequired, AddressInUse, ConnectFailed.</exception>
        public static UdpServerChannel Listen(string? name, IPAddress address, int port, SocketFraming framing, int maxPeers, ChannelOptions? options)
        {
            if (address == null) throw new ArgumentNullException(nameof(address));
            if (port < 0 || port > 65535) throw new ArgumentOutOfRangeException(nameof(port));
            string display = name ?? $"udp:{SocketServerChannel.FormatAddress(address)}:{port}";
            if (!IPAddress.IsLoopback(address))
            {
                throw new IpcException(IpcErrorKind.AuthenticationRequired,
                    $"Serving UDP on {address} would let other machines send to this process, and UDP peers cannot be authenticated " +
                    "(no handshake, source addresses can be forged). Serve a loopback address (127.0.0.1, the default, or ::1), or use TCP.",
                    display);
            }
            Socket socket = UdpDatagrams.Bind(address, port, display);
            try
            {
                int bound = ((IPEndPoint)socket.LocalEndPoint).Port;
                return new UdpServerChannel(name ?? $"udp:{SocketServerChannel.FormatAddress(address)}:{bound}", socket, framing, maxPeers, options);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        public SocketTransport Transport => SocketTransport.Udp;
        public SocketFraming Framing { get; }

        /// <summary>The address bound.</summary>
        public IPAddress IPAddress { get; }

        /// <summary>The UDP port bound (the one chosen when -Port was 0).</summary>
        public int Port { get; }

        /// <summary>Where peers send: address:port.</summary>
        public override string Address => $"{SocketServerChannel.FormatAddress(IPAddress)}:{Port}";

        /// <summary>Peers remembered at the same time, at most (for broadcasts); the least recently heard is forgotten first.</summary>
        public int MaxConnections { get; }

        /// <summary>The largest message one datagram carries with this server's framing and address family.</summary>
        public int MaxDatagramMessage => UdpDatagrams.MaxMessage(IPAddress.AddressFamily, Framing);

        /// <summary>Peers remembered now: the senders of valid messages, most recent last.</summary>
        public override int PeerCount { get { lock (_gate) return _peers.Count; } }

        /// <summary>Peers remembered now (the same as PeerCount).</summary>
        public int ClientCount => PeerCount;

        /// <summary>Distinct peers (address and port) heard from since the server started.</summary>
        public long ConnectionsAccepted => Interlocked.Read(ref _peersSeen);

        /// <summary>Datagrams that were not a valid message with this framing (LengthPrefixed: not exactly one data frame).</summary>
        public long DroppedMalformed => _drops.Malformed;

        /// <summary>Datagrams whose message was larger than -MaxMessageSize.</summary>
        public long DroppedTooLarge => _drops.TooLarge;

        /// <summary>Valid datagrams dropped because the receive queue was full (nobody reading, or the handlers behind).</summary>
        public long DroppedQueueFull => _drops.QueueFull;

        /// <summary>All datagrams this server dropped (the kernel's own drops, when its buffer overflows, are not seen here).</summary>
        public long DatagramsDropped => _drops.Total;

        /// <summary>Why the last malformed or oversized datagram was dropped.</summary>
        public IpcException? LastDropError => _drops.LastError;

        /// <summary>The peers remembered now, as channels a reply can be sent to.</summary>
        public IReadOnlyList<IpcChannel> Peers
        {
            get
            {
                lock (_gate) return new List<IpcChannel>(_peers.Values);
            }
        }

        public override ChannelState State
        {
            get
            {
                if (IsClosed) return ChannelState.Closed;
                lock (_gate) return _peers.Count > 0 ? ChannelState.Connected : ChannelState.Listening;
            }
        }

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken) =>
            _inbound.TakeBatch(into, max, deadline, cancellationToken);

        /// <summary>Sends to every remembered peer, waiting for a first one up to the deadline.</summary>
        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var frame = new OutgoingFrame((PsIpc.Transport.Framing.FrameType)format, payload);
            byte[] datagram = UdpDatagrams.Encode(frame, Framing, IPAddress.AddressFamily, Name);
            List<UdpPeer> targets;
            lock (_gate)
            {
                while (_peers.Count == 0)
                {
                    if (IsClosed) throw ClosedError();
                    if (!GateWait.Wait(_gate, deadline, cancellationToken))
                    {
                        throw new IpcException(IpcErrorKind.SendTimeout, $"Timed out waiting for a first datagram on '{Name}': no peer to send to yet.", Name);
                    }
                }
                targets = new List<UdpPeer>(_peers.Values);
            }
            IpcException? failure = null;
            int delivered = 0;
            foreach (UdpPeer peer in targets)
            {
                try
                {
                    SendDatagram(datagram, peer.RemoteEndPoint, cancellationToken);
                    peer.CountSent(frame.Payload.Length);
                    delivered++;
                }
                catch (IpcException e) when (e.Kind != IpcErrorKind.ChannelClosed)
                {
                    failure = e; // one unreachable peer does not stop a broadcast
                }
            }
            if (delivered == 0 && failure != null) throw failure;
            CountSent(frame.Payload.Length);
        }

        /// <summary>One datagram to a peer (a reply).</summary>
        internal void SendTo(UdpPeer peer, OutgoingFrame frame, CancellationToken cancellationToken)
        {
            byte[] datagram = UdpDatagrams.Encode(frame, Framing, IPAddress.AddressFamily, peer.Name);
            SendDatagram(datagram, peer.RemoteEndPoint, cancellationToken);
            CountSent(frame.Payload.Length);
        }

        private void SendDatagram(byte[] datagram, IPEndPoint to, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (IsClosed) throw ClosedError();
            try
            {
                _socket.SendTo(datagram, 0, datagram.Length, SocketFlags.None, to);
            }
            catch (ObjectDisposedException)
            {
                throw ClosedError();
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock)
            {
                throw new IpcException(IpcErrorKind.SendTimeout, $"Timed out sending a datagram from '{Name}' to {UdpDatagrams.Format(to)}: the send buffer stayed full.", Name, e);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
            {
                throw new IpcException(IpcErrorKind.MessageTooLarge, $"The system refused a datagram of {datagram.Length} bytes from '{Name}' as too large.", Name, e);
            }
            catch (SocketException e)
            {
                if (IsClosed) throw ClosedError();
                throw new IpcException(IpcErrorKind.PeerDisconnected, $"Sending a datagram from '{Name}' to {UdpDatagrams.Format(to)} failed: {e.Message}", Name, e);
            }
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            // A datagram is handed to the system before Send returns: nothing waits in a queue.
        }

        protected override void CloseCore(Deadline deadline)
        {
            _socket.Dispose();
            lock (_gate)
            {
                _peers.Clear();
                Monitor.PulseAll(_gate);
            }
            int ms = deadline.RemainingMilliseconds;
            _receiver.Join(ms < 0 || ms > ReceivePollMilliseconds * 2 ? ReceivePollMilliseconds * 2 : ms);
            _inbound.CompleteAndClear();
        }

        /// <summary>A peer closed by its owner is forgotten: broadcasts skip it until it sends again.</summary>
        internal void Forget(UdpPeer peer)
        {
            lock (_gate)
            {
                if (_peers.TryGetValue(peer.RemoteEndPoint, out UdpPeer known) && ReferenceEquals(known, peer)) _peers.Remove(peer.RemoteEndPoint);
            }
        }

        private void ReceiveLoop()
        {
            var buffer = new byte[UdpDatagrams.ReceiveBufferSize];
            EndPoint any = new IPEndPoint(IPAddress.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
            while (!IsClosed)
            {
                EndPoint from = any;
                int count;
                try
                {
                    count = _socket.ReceiveFrom(buffer, 0, buffer.Length, SocketFlags.None, ref from);
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException) when (IsClosed)
                {
                    return;
                }
                catch (SocketException e) when (UdpDatagrams.IsReceiveTimeout(e) || UdpDatagrams.IsRefusal(e))
                {
                    continue; // the poll's timeout; or (where the system reports it) a peer we answered has gone
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
                {
                    _drops.Invalid(new IpcException(IpcErrorKind.MessageTooLarge,
                        $"A datagram larger than {buffer.Length} bytes arrived on '{Name}'; it was dropped.", Name, e));
                    continue;
                }
                catch (SocketException e)
                {
                    _drops.Report(new IpcException(IpcErrorKind.ConnectFailed, $"Receiving on '{Name}' failed: {e.Message}", Name, e));
                    Thread.Sleep(10); // an unexpected error: do not spin on it
                    continue;
                }
                if (IsClosed) return;
                Accept(buffer, count, (IPEndPoint)from);
            }
        }

        private void Accept(byte[] buffer, int count, IPEndPoint from)
        {
            if (!UdpDatagrams.TryDecode(buffer, count, Framing, Options.MaxMessageSize, Name, UdpDatagrams.Format(from),
                out MessageFormat format, out byte[]? payload, out IpcException? invalid))
            {
                _drops.Invalid(invalid);
                return;
            }
            UdpPeer peer = PeerFor(from);
            var message = new IpcMessage(format, payload, peer);
            bool added;
            try
            {
                // Never wait: a full queue drops the datagram (UDP is lossy), so the kernel's buffer keeps draining.
                added = _inbound.TryAdd(message, payload.Length + 64L, Deadline.After(TimeSpan.Zero), CancellationToken.None);
            }
            catch (InvalidOperationException)
            {
                return; // closed
            }
            if (!added)
            {
                _drops.QueueWasFull();
                return;
            }
            CountReceived(1, payload.Length);
            peer.CountReceived(1, payload.Length);
        }

        private UdpPeer PeerFor(IPEndPoint from)
        {
            lock (_gate)
            {
                if (_peers.TryGetValue(from, out UdpPeer peer))
                {
                    peer.Heard();
                    return peer;
                }
                if (_peers.Count >= MaxConnections)
                {
                    UdpPeer? oldest = null;
                    foreach (UdpPeer p in _peers.Values)
                    {
                        if (oldest == null || p.LastHeardTicks < oldest.LastHeardTicks) oldest = p;
                    }
                    _peers.Remove(oldest!.RemoteEndPoint); // MaxConnections is at least 1, so the loop saw a peer
                }
                peer = new UdpPeer(this, from, ++_nextPeerId);
                _peers.Add(from, peer);
                Interlocked.Increment(ref _peersSeen);
                Monitor.PulseAll(_gate); // a broadcast may be waiting for a first peer
                return peer;
            }
        }
    }
}
