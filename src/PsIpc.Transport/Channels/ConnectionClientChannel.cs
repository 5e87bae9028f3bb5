using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// The client end of one connection to a server (a pipe, a TCP or Unix socket): what it receives is
    /// queued here, what it sends goes to that one connection, and when the server ends the connection the
    /// queue is completed (after the fault, if it failed). A transport derives from it and only connects.
    /// </summary>
    public abstract class ConnectionClientChannel : IpcChannel, IConnectionOwner
    {
        private readonly BoundedQueue<IpcMessage> _inbound;
        private MessageConnection? _connection;

        private protected ConnectionClientChannel(string name, ChannelKind kind, ChannelOptions? options)
            : base(name, kind, ChannelRole.Client, options)
        {
            _inbound = new BoundedQueue<IpcMessage>(Options.ReceiveBufferMessages, Options.ReceiveBufferBytes);
        }

        private protected MessageConnection Connection => _connection ?? throw new InvalidOperationException("The channel is not connected yet.");

        /// <summary>The server's process id, from its hello (the PsIpc protocol; 0 otherwise).</summary>
        public override int PeerProcessId => Connection.PeerProcessId;

        /// <summary>
        /// True when the server is known: it runs as this user (pipes and Unix sockets, checked by the system), or
        /// it proved the shared secret (-Secret) over TLS or on this machine. CliXml is decoded only from
        /// authenticated peers.
        /// </summary>
        public override bool IsAuthenticated => Connection.Identity.IsAuthenticated;

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

        /// <summary>
        /// Starts the connection over <paramref name="stream"/> and waits until it is open (the server's hello),
        /// until <paramref name="handshake"/>. On failure the connection is aborted and the error thrown.
        /// </summary>
        private protected void Open(ConnectedStream stream, MessageFraming framing, Deadline handshake, CancellationToken cancellationToken)
        {
            var connection = new MessageConnection(stream, this, framing, Options, Name, isServerSide: false) { SenderView = this, CountersOf = this };
            _connection = connection;
            connection.Start();
            try
            {
                if (!connection.WaitForOpen(handshake, cancellationToken)) throw HandshakeTimedOut();
            }
            catch (IpcException e)
            {
                connection.Abort(null);
                throw Translate(e);
            }
            catch
            {
                connection.Abort(null);
                throw;
            }
        }

        /// <summary>The error when the server did not answer the handshake in time.</summary>
        private protected abstract IpcException HandshakeTimedOut();

        /// <summary>A server's refusal as this kind of client reports it (a socket server's PipeBusy is ServerBusy).</summary>
        private protected virtual IpcException Translate(IpcException error) => error;

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            Connection.SendMessage(format, payload, deadline, cancellationToken);
            CountSent(payload.Length);
        }

        /// <summary>True when the server announced correlation ids (a PsIpc server of this version): see IpcChannel.Request.</summary>
        public override bool SupportsCorrelation => Connection.PeerSupportsCorrelation;

        public override long LateRepliesDropped => _connection?.LateRepliesDropped ?? 0;

        protected override IpcMessage? RequestCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            MessageConnection connection = Connection;
            if (!connection.PeerSupportsCorrelation) return base.RequestCore(format, payload, deadline, cancellationToken);
            IpcMessage? reply = connection.Request(format, payload, deadline, cancellationToken);
            CountSent(payload.Length);
            return reply;
        }

        protected override void ReplyCore(IpcMessage request, MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            Connection.Reply(request, format, payload, deadline, cancellationToken);
            CountSent(payload.Length);
        }

        protected override bool ReplyErrorCore(IpcMessage request, IpcErrorKind kind, string message, Deadline deadline, CancellationToken cancellationToken) =>
            Connection.ReplyError(request, kind, message, deadline, cancellationToken);

        private long _readsByReceivers;

        /// <summary>Reads a receiver made itself on this channel's connection (tests look at it to know that path ran).</summary>
        internal long ReadsByReceivers => Interlocked.Read(ref _readsByReceivers);

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            MessageConnection connection = Connection;
            // After a send, the answer is read on this thread while answers keep coming (one wake-up less per round trip
            // of a Send-IpcMessage / Receive-IpcMessage loop). See MessageConnection.CallerRead.cs.
            bool readHere = false;
            while (_inbound.Count == 0 && !_inbound.IsCompleted && connection.ReadForReceiver(deadline, cancellationToken))
            {
                readHere = true;
                Interlocked.Increment(ref _readsByReceivers);
            }
            // Otherwise: after requests (or this end's reads) its reader thread may be parked for a moment, and messages are wanted now.
            if (!readHere) connection.WakeReader();
            return _inbound.TakeBatch(into, max, deadline, cancellationToken);
        }

        public override void Flush(Deadline deadline, CancellationToken cancellationToken) => Connection.Flush(deadline, cancellationToken);

        protected override void CloseCore(Deadline deadline)
        {
            _connection?.Close(deadline);
            _inbound.CompleteAndClear();
        }

        BoundedQueue<IpcMessage> IConnectionOwner.Inbound => _inbound;

        IpcException? IConnectionOwner.OnOpened(MessageConnection connection) => null;

        bool IConnectionOwner.KeepsHalfClosed => false; // the server is done: so is this end

        /// <summary>The connection ended: its fault (if any) is the last thing Receive reports.</summary>
        void IConnectionOwner.OnEnded(MessageConnection connection, IpcException? fault)
        {
            try
            {
                if (fault != null)
                {
                    CountError();
                    _inbound.TryAdd(IpcMessage.ForFault(Translate(fault), this), 64, Deadline.Infinite, CancellationToken.None);
                }
                _inbound.Complete();
            }
            catch (InvalidOperationException) { } // closed locally: nobody will read
        }
    }
}
