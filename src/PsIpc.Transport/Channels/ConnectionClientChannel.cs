using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// The client end of one connection to a server (a pipe, a TCP or Unix socket): what it receives is
    /// queued here, what it sends goes to that one connection, and when the server ends the connection the
    /// queue is completed (after the fault, if it failed).
    /// </summary>
    public abstract class ConnectionClientChannel : IpcChannel
    {
        private readonly BoundedQueue<IpcMessage> _inbound;

        internal ConnectionClientChannel(string name, ChannelKind kind, ChannelOptions options)
            : base(name, kind, ChannelRole.Client, options)
        {
            _inbound = new BoundedQueue<IpcMessage>(Options.ReceiveBufferMessages, Options.ReceiveBufferBytes);
        }

        /// <summary>Set by the derived class once connected, before the channel is handed out.</summary>
        private protected IConnection Connection { get; set; }

        /// <summary>The server's process id, from its Hello (the PsIpc protocol; 0 otherwise).</summary>
        public override int PeerProcessId => Connection.PeerProcessId;

        public override int PeerCount => Connection.IsEnded ? 0 : 1;

        public override ChannelState State
        {
            get
            {
                if (IsClosed) return ChannelState.Closed;
                if (!Connection.IsEnded) return ChannelState.Connected;
                return Connection.Fault != null ? ChannelState.Faulted : ChannelState.Closed;
            }
        }

        /// <summary>Where the connection puts what it receives.</summary>
        internal BoundedQueue<IpcMessage> InboundQueue => _inbound;

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken) =>
            _inbound.TakeBatch(into, max, deadline, cancellationToken);

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var frame = new OutgoingFrame((PsIpc.Transport.Framing.FrameType)format, payload);
            Connection.Enqueue(frame, deadline, cancellationToken);
            CountSent(frame.Payload.Length);
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken) => Connection.Flush(deadline, cancellationToken);

        protected override void CloseCore(Deadline deadline)
        {
            Connection.Close(deadline);
            _inbound.CompleteAndClear();
        }

        /// <summary>The connection ended: its fault (if any) is the last thing Receive reports.</summary>
        private protected void OnConnectionEnded(IpcException fault)
        {
            try
            {
                if (fault != null)
                {
                    _inbound.TryAdd(IpcMessage.ForFault(fault, this), 64, Deadline.Infinite, CancellationToken.None);
                }
                _inbound.Complete();
            }
            catch (InvalidOperationException) { } // closed locally: nobody will read
        }
    }
}
