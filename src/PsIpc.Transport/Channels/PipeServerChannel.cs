using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Pipes;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// The server end of a named pipe. Listens in the background and accepts up to MaxClients clients over
    /// its lifetime; Receive merges what they all send, in arrival order; Send goes to every connected
    /// client (waiting for the first one when none has connected yet). Once MaxClients clients have come and
    /// all have gone, Receive ends: nothing more can arrive.
    /// </summary>
    public sealed class PipeServerChannel : IpcChannel, IConnectionOwner
    {
        private readonly object _gate = new object();
        private readonly List<StreamConnection> _live = new List<StreamConnection>();
        private readonly List<StreamConnection> _pending = new List<StreamConnection>();
        private readonly BoundedQueue<IpcMessage> _inbound;
        private readonly IPipeListener _listener;
        private readonly Thread _acceptThread;
        private readonly PipeName _pipe;
        private int _accepted;

        public PipeServerChannel(string name, int maxClients, ChannelOptions options)
            : this(PipeName.Parse(name ?? PipeName.NewUniqueName()), maxClients, options)
        {
        }

        private PipeServerChannel(PipeName pipe, int maxClients, ChannelOptions options)
            : base(pipe.Name, ChannelKind.Pipe, ChannelRole.Server, options)
        {
            if (maxClients < 1) throw new ArgumentOutOfRangeException(nameof(maxClients), "MaxClients must be at least 1.");
            _pipe = pipe;
            MaxClients = maxClients;
            _inbound = new BoundedQueue<IpcMessage>(Options.ReceiveBufferMessages, Options.ReceiveBufferBytes);
            _listener = PipeEndpoints.Listen(pipe);
            _acceptThread = new Thread(AcceptLoop, 128 * 1024) { IsBackground = true, Name = $"PsIpc accept {pipe.Name}" };
            _acceptThread.Start();
        }

        public int MaxClients { get; }

        /// <summary>Clients that completed the handshake so far.</summary>
        public int ClientsAccepted { get { lock (_gate) return _accepted; } }

        public override string Address => _pipe.Path;

        public override int PeerCount { get { lock (_gate) return _live.Count; } }

        public override ChannelState State
        {
            get
            {
                if (IsClosed) return ChannelState.Closed;
                lock (_gate) return _live.Count > 0 ? ChannelState.Connected : ChannelState.Listening;
            }
        }

        /// <summary>The peers connected now, as channels a reply can be sent to.</summary>
        public IReadOnlyList<IpcChannel> Peers
        {
            get
            {
                lock (_gate)
                {
                    var peers = new List<IpcChannel>(_live.Count);
                    foreach (StreamConnection c in _live) peers.Add(c.SenderView);
                    return peers;
                }
            }
        }

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken) =>
            _inbound.TakeBatch(into, max, deadline, cancellationToken);

        BoundedQueue<IpcMessage> IConnectionOwner.Inbound => _inbound;

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var frame = new OutgoingFrame((PsIpc.Transport.Framing.FrameType)format, payload);
            List<StreamConnection> targets;
            lock (_gate)
            {
                while (_live.Count == 0)
                {
                    if (_accepted >= MaxClients)
                    {
                        throw new IpcException(IpcErrorKind.PeerDisconnected,
                            $"Every client of the pipe '{Name}' has disconnected (MaxClients {MaxClients}); there is nobody to send to.", Name);
                    }
                    if (IsClosed) throw ClosedError();
                    if (!GateWait.Wait(_gate, deadline, cancellationToken))
                    {
                        throw new IpcException(IpcErrorKind.SendTimeout,
                            $"Timed out waiting for a client to connect to the pipe '{Name}'.", Name);
                    }
                }
                targets = new List<StreamConnection>(_live);
            }
            if (Broadcast.Send(targets, frame, deadline, cancellationToken, skipSmaller: false)) CountSent(frame.Payload.Length);
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            List<StreamConnection> targets;
            lock (_gate) targets = new List<StreamConnection>(_live);
            Broadcast.Flush(targets, deadline, cancellationToken, reportSoleLoss: true);
        }

        protected override void CloseCore(Deadline deadline)
        {
            _listener.Dispose();
            List<StreamConnection> all;
            lock (_gate)
            {
                all = new List<StreamConnection>(_live);
                all.AddRange(_pending);
                Monitor.PulseAll(_gate);
            }
            foreach (StreamConnection connection in all) connection.Close(deadline);
            _inbound.CompleteAndClear();
        }

        IpcException IConnectionOwner.OnHello(StreamConnection connection)
        {
            lock (_gate)
            {
                _pending.Remove(connection);
                if (_accepted >= MaxClients || IsClosed)
                {
                    return new IpcException(IpcErrorKind.PipeBusy,
                        $"The pipe '{Name}' accepts {MaxClients} client(s) and has them all (New-IpcPipe -MaxClients).", Name);
                }
                _accepted++;
                _live.Add(connection);
                Monitor.PulseAll(_gate);
                return null;
            }
        }

        void IConnectionOwner.OnEnded(StreamConnection connection, IpcException fault)
        {
            bool complete;
            lock (_gate)
            {
                _live.Remove(connection);
                _pending.Remove(connection);
                complete = _accepted >= MaxClients && _live.Count == 0;
                Monitor.PulseAll(_gate);
            }
            if (fault != null) ReportFault(fault, connection.SenderView);
            if (complete) _inbound.Complete();
        }

        private void AcceptLoop()
        {
            while (!IsClosed)
            {
                PipeStreamPair accepted;
                try
                {
                    accepted = _listener.Accept();
                }
                catch (IpcException e)
                {
                    ReportFault(e, this);
                    continue;
                }
                catch (Exception) when (IsClosed)
                {
                    return;
                }
                catch (Exception e) when (e is System.IO.IOException || e is System.Net.Sockets.SocketException)
                {
                    ReportFault(new IpcException(IpcErrorKind.ConnectFailed, $"Accepting a client on '{Name}' failed: {e.Message}", Name, e), this);
                    continue;
                }
                var connection = new StreamConnection(accepted.Stream, accepted.Socket, this, Options, Name, isServerSide: true)
                {
                    CountersOf = this,
                };
                connection.SenderView = new IpcPeer(this, connection);
                lock (_gate)
                {
                    if (IsClosed)
                    {
                        accepted.Stream.Dispose();
                        return;
                    }
                    _pending.Add(connection);
                }
                connection.Start();
            }
        }

        private void ReportFault(IpcException fault, IpcChannel sender)
        {
            try
            {
                _inbound.TryAdd(IpcMessage.ForFault(fault, sender), 64, Deadline.Infinite, CancellationToken.None);
            }
            catch (InvalidOperationException) { } // closed or complete: nobody will read it
        }
    }
}
