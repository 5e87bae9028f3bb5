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
    /// The client end of UDP: a connected UDP socket (only the server's datagrams are received), each
    /// datagram one message (<see cref="UdpDatagrams"/>). There is no handshake and no end: Receive waits
    /// until its deadline. When nothing listens at the server's port, the system's ICMP "port unreachable"
    /// arrives as a ConnectionRefused error in the receive stream (or from the next Send); the channel stays
    /// usable, since a server may start later.
    /// </summary>
    public sealed class UdpClientChannel : IpcChannel
    {
        private const int ReceivePollMilliseconds = 1000;

        private readonly BoundedQueue<IpcMessage> _inbound;
        private readonly Socket _socket;
        private readonly object _receiverGate = new object(); // pulsed when the receive loop ended (nothing to dispose)
        private bool _receiverEnded;
        private readonly string _address;
        private readonly DatagramDrops _drops;
        private long _refusals;

        private UdpClientChannel(string name, string address, Socket socket, SocketFraming framing, ChannelOptions? options)
            : base(name, ChannelKind.Udp, ChannelRole.Client, options)
        {
            _address = address;
            _socket = socket;
            Framing = framing;
            RemoteEndPoint = (IPEndPoint)socket.RemoteEndPoint;
            _socket.ReceiveTimeout = ReceivePollMilliseconds;
            _inbound = new BoundedQueue<IpcMessage>(Options.ReceiveBufferMessages, Options.ReceiveBufferBytes);
            _drops = new DatagramDrops(_inbound, this, throttle: false); // a connected socket hears its server only
            // A reader thread reused from a channel that closed: a client per datagram starts no thread each.
            Connections.ReaderThreads.Run(ReceiveLoop);
        }

        /// <summary>
        /// Sets up a UDP socket connected to <paramref name="host"/>:<paramref name="port"/>. Nothing is sent:
        /// this only looks the host up (within the deadline) and fixes the peer.
        /// </summary>
        /// <exception cref="IpcException">HostNotFound, ConnectTimeout, ConnectFailed.</exception>
        public static UdpClientChannel Connect(string host, int port, SocketFraming framing, Deadline deadline, CancellationToken cancellationToken,
            ChannelOptions? options = null)
        {
            if (string.IsNullOrEmpty(host)) throw new ArgumentNullException(nameof(host));
            if (port < 1 || port > 65535) throw new ArgumentOutOfRangeException(nameof(port));
            string name = $"udp:{host}:{port}";
            Socket socket = UdpDatagrams.Connect(host, port, name, deadline, cancellationToken);
            try
            {
                return new UdpClientChannel(name, $"{host}:{port}", socket, framing, options);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        public SocketTransport Transport => SocketTransport.Udp;
        public SocketFraming Framing { get; }

        /// <summary>The server's address and port, as resolved.</summary>
        public IPEndPoint RemoteEndPoint { get; }

        /// <summary>The local end: ip:port.</summary>
        public string? LocalAddress
        {
            get
            {
                try { return _socket.LocalEndPoint?.ToString(); }
                catch (ObjectDisposedException) { return null; }
            }
        }

        /// <summary>Always false: a UDP peer is not authenticated, so its CliXml is never deserialized.</summary>
        public override bool IsAuthenticated => false;

        /// <summary>The server announces no process id over UDP.</summary>
        public override int PeerProcessId => 0;

        /// <summary>The largest message one datagram carries with this channel's framing and address family.</summary>
        public int MaxDatagramMessage => UdpDatagrams.MaxMessage(RemoteEndPoint.AddressFamily, Framing);

        public long DroppedMalformed => _drops.Malformed;
        public long DroppedTooLarge => _drops.TooLarge;
        public long DroppedQueueFull => _drops.QueueFull;
        public long DatagramsDropped => _drops.Total;

        /// <summary>ICMP "port unreachable" answers received: nothing listened at the server's port.</summary>
        public long Refusals => Interlocked.Read(ref _refusals);

        /// <summary>The last refusal or dropped datagram's reason.</summary>
        public IpcException? LastError => _drops.LastError;

        public override string Address => _address;

        public override int PeerCount => IsClosed ? 0 : 1;

        public override ChannelState State => IsClosed ? ChannelState.Closed : ChannelState.Connected;

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken) =>
            _inbound.TakeBatch(into, max, deadline, cancellationToken);

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var frame = new OutgoingFrame((PsIpc.Transport.Framing.FrameType)format, payload);
            byte[] datagram = UdpDatagrams.Encode(frame, Framing, RemoteEndPoint.AddressFamily, Name);
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                _socket.Send(datagram, 0, datagram.Length, SocketFlags.None);
            }
            catch (ObjectDisposedException)
            {
                throw ClosedError();
            }
            catch (SocketException e) when (UdpDatagrams.IsRefusal(e))
            {
                Interlocked.Increment(ref _refusals);
                IpcException refused = Refused(e);
                _drops.Remember(refused);
                throw refused;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock)
            {
                throw new IpcException(IpcErrorKind.SendTimeout, $"Timed out sending a datagram to {_address}: the send buffer stayed full.", Name, e);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
            {
                throw new IpcException(IpcErrorKind.MessageTooLarge, $"The system refused a datagram of {datagram.Length} bytes to {_address} as too large.", Name, e);
            }
            catch (SocketException e)
            {
                if (IsClosed) throw ClosedError();
                throw new IpcException(IpcErrorKind.ConnectFailed, $"Sending a datagram to {_address} failed: {e.Message}", Name, e);
            }
            CountSent(frame.Payload.Length);
        }

        private IpcException Refused(Exception inner) =>
            new IpcException(IpcErrorKind.ConnectionRefused,
                $"Nothing listens on UDP {_address}: the system answered a datagram with \"port unreachable\".", Name, inner);

        public override void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            // Each datagram is handed to the system before Send returns.
        }

        protected override void CloseCore(Deadline deadline)
        {
            _socket.Dispose();
            // The receive loop sees the closed socket within a poll; the wait is bounded by two polls and the deadline.
            Deadline waitForReceiver = Deadline.Earliest(deadline, Deadline.After(TimeSpan.FromMilliseconds(ReceivePollMilliseconds * 2)));
            lock (_receiverGate)
            {
                while (!_receiverEnded && GateWait.Wait(_receiverGate, waitForReceiver, CancellationToken.None))
                {
                }
            }
            _inbound.CompleteAndClear();
        }

        private void ReceiveLoop()
        {
            try
            {
                ReceiveUntilClosed();
            }
            finally
            {
                lock (_receiverGate)
                {
                    _receiverEnded = true;
                    Monitor.PulseAll(_receiverGate);
                }
            }
        }

        private void ReceiveUntilClosed()
        {
            var buffer = new byte[UdpDatagrams.ReceiveBufferSize];
            while (!IsClosed)
            {
                int count;
                try
                {
                    count = _socket.Receive(buffer, 0, buffer.Length, SocketFlags.None);
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException) when (IsClosed)
                {
                    return;
                }
                catch (SocketException e) when (UdpDatagrams.IsReceiveTimeout(e))
                {
                    continue;
                }
                catch (SocketException e) when (UdpDatagrams.IsRefusal(e))
                {
                    Interlocked.Increment(ref _refusals);
                    _drops.Report(Refused(e));
                    continue;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
                {
                    _drops.Invalid(new IpcException(IpcErrorKind.MessageTooLarge, $"A datagram larger than {buffer.Length} bytes arrived from {_address}; it was dropped.", Name, e));
                    continue;
                }
                catch (SocketException e)
                {
                    _drops.Report(new IpcException(IpcErrorKind.ConnectFailed, $"Receiving from {_address} failed: {e.Message}", Name, e));
                    Thread.Sleep(10); // an unexpected error: do not spin on it
                    continue;
                }
                if (IsClosed) return;
                Accept(buffer, count);
            }
        }

        private void Accept(byte[] buffer, int count)
        {
            if (!UdpDatagrams.TryDecode(buffer, count, Framing, Options.MaxMessageSize, Name, _address, out MessageFormat format, out byte[]? payload, out IpcException? invalid))
            {
                _drops.Invalid(invalid);
                return;
            }
            try
            {
                if (!_inbound.TryAdd(new IpcMessage(format, payload, this), payload.Length + 64L, Deadline.After(TimeSpan.Zero), CancellationToken.None))
                {
                    _drops.QueueWasFull();
                    return;
                }
            }
            catch (InvalidOperationException)
            {
                return; // closed
            }
            CountReceived(1, payload.Length);
        }
    }
}
