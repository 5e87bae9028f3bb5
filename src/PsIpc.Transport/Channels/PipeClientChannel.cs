using System;
using System.Threading;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Pipes;
using PsIpc.Transport.Sockets;

namespace PsIpc.Transport.Channels
{
    /// <summary>The client end of a named pipe: one connection to a PsIpc pipe server.</summary>
    public sealed class PipeClientChannel : ConnectionClientChannel
    {
        private readonly PipeName _pipe;

        private PipeClientChannel(PipeName pipe, ChannelOptions? options, SocketFraming framing)
            : base(pipe.Name, ChannelKind.Pipe, options)
        {
            _pipe = pipe;
            Framing = framing;
        }

        /// <summary>
        /// Connects to the pipe server <paramref name="name"/>, waiting for it to appear and to answer the
        /// handshake until the deadline.
        /// </summary>
        /// <exception cref="IpcException">ConnectTimeout, AccessDenied, PipeBusy, ProtocolError, InvalidPipeName...</exception>
        public static PipeClientChannel Connect(string name, Deadline deadline, CancellationToken cancellationToken, ChannelOptions? options = null) =>
            Connect(name, SocketFraming.LengthPrefixed, deadline, cancellationToken, options);

        /// <summary>
        /// Connects with the given framing: Line or Raw talk to a pipe served by a program that knows nothing of
        /// PsIpc (a .NET NamedPipeServerStream; on Unix any program's socket at the pipe's path).
        /// </summary>
        public static PipeClientChannel Connect(string name, SocketFraming framing, Deadline deadline, CancellationToken cancellationToken,
            ChannelOptions? options = null)
        {
            PipeName pipe = PipeName.Parse(name);
            PipeStreamPair pair = PipeEndpoints.Connect(pipe, deadline, cancellationToken);
            var channel = new PipeClientChannel(pipe, options, framing);
            // The socket is connected, so the server is there: give its hello the time a round trip needs
            // even when the caller polls (-TimeoutSeconds 0), and never more than the handshake timeout.
            Deadline handshake = deadline.RemainingMilliseconds >= 0 && deadline.RemainingMilliseconds < 1000
                ? Deadline.After(TimeSpan.FromSeconds(1))
                : deadline.IsInfinite ? Deadline.After(channel.Options.HandshakeTimeout) : deadline;
            channel.Open(PipeEndpoints.Describe(pair, pipe), MessageFraming.For(framing), handshake, cancellationToken);
            return channel;
        }

        public override string Address => _pipe.Path;

        /// <summary>How messages are cut: LengthPrefixed (the PsIpc protocol), Line or Raw.</summary>
        public SocketFraming Framing { get; }

        private protected override IpcException HandshakeTimedOut() =>
            new IpcException(IpcErrorKind.ConnectTimeout,
                $"Connected to the pipe '{_pipe.Name}' but its server did not answer the PsIpc handshake in time.", _pipe.Name);
    }
}
