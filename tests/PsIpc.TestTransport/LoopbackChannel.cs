using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.TestTransport
{
    /// <summary>
    /// One end of an in-process pair: what one end sends, the other receives. Written only against the public
    /// contract of <see cref="IpcChannel"/>: SendCore, ReceiveCore and CloseCore, the capability and peer
    /// members, and <see cref="IpcMessage.Create"/>. Its peer is "authenticated" only when the pair was
    /// created so, which lets a test see that the module asks the channel before decoding CliXml.
    /// </summary>
    public sealed class LoopbackChannel : IpcChannel
    {
        private static readonly int s_processId = System.Diagnostics.Process.GetCurrentProcess().Id;

        private readonly object _gate = new object();
        private readonly Queue<IpcMessage> _inbox = new Queue<IpcMessage>();
        private readonly bool _authenticated;
        private LoopbackChannel? _other;
        private bool _otherClosed;

        private LoopbackChannel(string name, ChannelRole role, bool authenticated)
            : base(name, ChannelKind.Other, role, null)
        {
            _authenticated = authenticated;
        }

        /// <summary>Creates a connected pair (Server and Client role), both registered for Get-IpcChannel.</summary>
        public static LoopbackChannel[] CreatePair(string name, bool authenticated = false)
        {
            var server = new LoopbackChannel(name, ChannelRole.Server, authenticated);
            var client = new LoopbackChannel(name + "-client", ChannelRole.Client, authenticated);
            server._other = client;
            client._other = server;
            ChannelRegistry.Register(server);
            ChannelRegistry.Register(client);
            return new[] { server, client };
        }

        /// <summary>Messages waiting to be received at this end.</summary>
        public int Waiting
        {
            get { lock (_gate) return _inbox.Count; }
        }

        /// <summary>Messages the consumer confirmed (Receive-IpcMessage acknowledges what it wrote to the pipeline).</summary>
        public int Acknowledged { get; private set; }

        /// <summary>Messages the consumer could not decode.</summary>
        public int Rejected { get; private set; }

        public override ChannelState State => IsClosed ? ChannelState.Closed : ChannelState.Connected;

        public override int PeerCount => IsClosed || OtherClosed ? 0 : 1;

        public override string Address => "loopback:" + Name;

        public override bool IsAuthenticated => _authenticated;

        public override int PeerProcessId => s_processId; // both ends live in this process

        public override void Acknowledge(IpcMessage message)
        {
            lock (_gate) Acknowledged++;
        }

        public override void Reject(IpcMessage message, Exception reason)
        {
            lock (_gate) Rejected++;
        }

        private bool OtherClosed
        {
            get { lock (_gate) return _otherClosed; }
        }

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            LoopbackChannel other = _other ?? throw new InvalidOperationException("Not paired.");
            if (!other.Deliver(IpcMessage.Create(format, payload, this)))
            {
                throw new IpcException(IpcErrorKind.PeerDisconnected, $"The other end of '{Name}' has closed.", Name);
            }
            CountSent(payload.Length);
        }

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            using (cancellationToken.Register(() => { lock (_gate) Monitor.PulseAll(_gate); }))
            {
                lock (_gate)
                {
                    while (_inbox.Count == 0)
                    {
                        if (_otherClosed) return -1;
                        if (IsClosed) throw new IpcException(IpcErrorKind.ChannelClosed, $"The channel '{Name}' is closed.", Name);
                        cancellationToken.ThrowIfCancellationRequested();
                        int ms = deadline.RemainingMilliseconds;
                        if (ms == 0) return 0;
                        Monitor.Wait(_gate, ms);
                    }
                    int n = 0;
                    long bytes = 0;
                    while (n < max && _inbox.Count > 0)
                    {
                        IpcMessage message = _inbox.Dequeue();
                        bytes += message.Size;
                        into.Add(message);
                        n++;
                    }
                    CountReceived(n, bytes);
                    return n;
                }
            }
        }

        protected override void CloseCore(Deadline deadline)
        {
            lock (_gate) Monitor.PulseAll(_gate);
            _other?.PeerClosed();
        }

        private bool Deliver(IpcMessage message)
        {
            lock (_gate)
            {
                if (IsClosed) return false;
                _inbox.Enqueue(message);
                Monitor.PulseAll(_gate);
                return true;
            }
        }

        private void PeerClosed()
        {
            lock (_gate)
            {
                _otherClosed = true;
                Monitor.PulseAll(_gate);
            }
        }
    }
}
