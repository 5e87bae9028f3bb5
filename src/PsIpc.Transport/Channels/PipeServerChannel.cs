using System;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Pipes;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// The server end of a named pipe. Listens in the background and accepts up to MaxClients clients over
    /// its lifetime; Receive merges what they all send, in arrival order; Send goes to every connected
    /// client (waiting for the first one when none has connected yet). Once MaxClients clients have come and
    /// all have gone, Receive ends: nothing more can arrive.
    /// </summary>
    public sealed class PipeServerChannel : ServerChannel
    {
        private readonly IPipeListener _listener;
        private readonly PipeName _pipe;

        public PipeServerChannel(string? name, int maxClients, ChannelOptions? options)
            : this(PipeName.Parse(name ?? PipeName.NewUniqueName()), maxClients, options, Sockets.SocketFraming.LengthPrefixed)
        {
        }

        /// <param name="framing">LengthPrefixed: the PsIpc protocol. Line or Raw: for clients that know nothing of
        /// PsIpc (a .NET NamedPipeClientStream, any program's Unix socket at the pipe's path).</param>
        public PipeServerChannel(string? name, int maxClients, ChannelOptions? options, Sockets.SocketFraming framing)
            : this(PipeName.Parse(name ?? PipeName.NewUniqueName()), maxClients, options, framing)
        {
        }

        private PipeServerChannel(PipeName pipe, int maxClients, ChannelOptions? options, Sockets.SocketFraming framing)
            : base(pipe.Name, ChannelKind.Pipe, options?.Clone(), MessageFraming.For(framing), sweepIdle: false)
        {
            Framing = framing;
            if (maxClients < 1) throw new ArgumentOutOfRangeException(nameof(maxClients), "MaxClients must be at least 1.");
            _pipe = pipe;
            MaxClients = maxClients;
            _listener = PipeEndpoints.Listen(pipe);
            StartAccepting();
        }

        public int MaxClients { get; }

        /// <summary>How messages are cut: LengthPrefixed (the PsIpc protocol), Line or Raw.</summary>
        public Sockets.SocketFraming Framing { get; }

        /// <summary>Clients that completed the handshake so far.</summary>
        public int ClientsAccepted => (int)Math.Min(int.MaxValue, ConnectionsAccepted);

        public override string Address => _pipe.Path;

        private protected override int Capacity => MaxClients;

        private protected override bool WaitsToReportFaults => true;

        private protected override IpcErrorKind BusyKind => IpcErrorKind.PipeBusy;

        private protected override bool FlushReportsSoleLoss => true;

        private protected override ConnectedStream? AcceptNext() => PipeEndpoints.Describe(_listener.Accept(), _pipe);

        private protected override void StopListening() => _listener.Dispose();

        private protected override IpcException? RefusalAtOpen(int live, long accepted) =>
            accepted >= MaxClients
                ? new IpcException(IpcErrorKind.PipeBusy,
                    $"The pipe '{Name}' accepts {MaxClients} client(s) and has them all (New-IpcPipe -MaxClients).", Name)
                : null;

        private protected override IpcException? NobodyToSendTo(long accepted) =>
            accepted >= MaxClients
                ? new IpcException(IpcErrorKind.PeerDisconnected,
                    $"Every client of the pipe '{Name}' has disconnected (MaxClients {MaxClients}); there is nobody to send to.", Name)
                : null;

        private protected override void OnPeerLeft(int live, long accepted)
        {
            if (accepted >= MaxClients && live == 0) CompleteInbound();
        }
    }
}
