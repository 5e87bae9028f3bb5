using System;
using System.Threading;
using PsIpc.Transport.Pipes;

namespace PsIpc.Transport.Channels
{
    /// <summary>The client end of a named pipe: one connection to a PsIpc pipe server.</summary>
    public sealed class PipeClientChannel : IpcChannel, IConnectionOwner
    {
        private readonly BoundedQueue<IpcMessage> _inbound;
        private readonly PipeName _pipe;
        private StreamConnection _connection;

        private PipeClientChannel(PipeName pipe, ChannelOptions options)
            : base(pipe.Name, "Pipe", ChannelRole.Client, options)
        {
            _pipe = pipe;
            _inbound = new BoundedQueue<IpcMessage>(Options.ReceiveBufferMessages, Options.ReceiveBufferBytes);
        }

        /// <summary>
        /// Connects to the pipe server <paramref name="name"/>, waiting for it to appear and to answer the
        /// handshake until the deadline.
        /// </summary>
        /// <exception cref="IpcException">ConnectTimeout, AccessDenied, PipeBusy, ProtocolError, InvalidPipeName...</exception>
        public static PipeClientChannel Connect(string name, Deadline deadline, CancellationToken cancellationToken, ChannelOptions options = null)
        {
            PipeName pipe = PipeName.Parse(name);
            PipeStreamPair pair = PipeEndpoints.Connect(pipe, deadline, cancellationToken);
            var channel = new PipeClientChannel(pipe, options);
            var connection = new StreamConnection(pair.Stream, pair.Socket, channel, channel.Options, pipe.Name, isServerSide: false)
            {
                SenderView = channel,
                CountersOf = channel,
            };
            channel._connection = connection;
            connection.Start();
            try
            {
                // The socket is connected, so the server is there: give its Hello the time a round trip needs
                // even when the caller polls (-TimeoutSeconds 0), and never more than the handshake timeout.
                Deadline handshake = deadline.RemainingMilliseconds >= 0 && deadline.RemainingMilliseconds < 1000
                    ? Deadline.After(TimeSpan.FromSeconds(1))
                    : deadline.IsInfinite ? Deadline.After(channel.Options.HandshakeTimeout) : deadline;
                if (!connection.WaitForHello(handshake, cancellationToken))
                {
                    throw new IpcException(IpcErrorKind.ConnectTimeout,
                        $"Connected to the pipe '{pipe.Name}' but its server did not answer the PsIpc handshake in time.", pipe.Name);
                }
            }
            catch
            {
                connection.Abort(null);
                throw;
            }
            return channel;
        }

        /// <summary>The server's process id, from its Hello.</summary>
        public int PeerProcessId => _connection.PeerHello?.ProcessId ?? 0;

        public override string Address => _pipe.Path;

        public override int PeerCount => _connection.IsEnded ? 0 : 1;

        public override ChannelState State
        {
            get
            {
                if (IsClosed) return ChannelState.Closed;
                if (!_connection.IsEnded) return ChannelState.Connected;
                return _connection.Fault != null ? ChannelState.Faulted : ChannelState.Closed;
            }
        }

        internal override BoundedQueue<IpcMessage> Inbound => _inbound;

        BoundedQueue<IpcMessage> IConnectionOwner.Inbound => _inbound;

        internal override void SendCore(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
            _connection.Enqueue(frame, deadline, cancellationToken);
            CountSent(frame.Payload.Length);
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken) =>
            _connection.Flush(deadline, cancellationToken);

        protected override void CloseCore(Deadline deadline)
        {
            _connection.Close(deadline);
            _inbound.CompleteAndClear();
        }

        IpcException IConnectionOwner.OnHello(StreamConnection connection) => null;

        void IConnectionOwner.OnEnded(StreamConnection connection, IpcException fault)
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
