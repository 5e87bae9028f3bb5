using System;
using System.Threading;

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

        internal ConnectionClientChannel(string name, string kind, ChannelOptions options)
            : base(name, kind, ChannelRole.Client, options)
        {
            _inbound = new BoundedQueue<IpcMessage>(Options.ReceiveBufferMessages, Options.ReceiveBufferBytes);
        }

        /// <summary>Set by the derived class once connected, before the channel is handed out.</summary>
        private protected IConnection Connection { get; set; }

        /// <summary>The server's process id, from its Hello (the PsIpc protocol; 0 otherwise).</summary>
        public int PeerProcessId => Connection.PeerProcessId;

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

        internal override BoundedQueue<IpcMessage> Inbound => _inbound;

        internal override void SendCore(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
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
