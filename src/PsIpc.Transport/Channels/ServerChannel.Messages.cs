using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    // Send (a broadcast to every peer), receive, flush, close, the idle sweep and fault reporting.
    public abstract partial class ServerChannel
    {
        /// <summary>The error when a send finds no peer and none can come any more (a pipe's clients all left); null: wait.</summary>
        private protected virtual IpcException? NobodyToSendTo(long accepted) => null;

        /// <summary>Whether a broadcast skips a peer that accepts only smaller messages (sockets) or fails (pipes).</summary>
        private protected virtual bool BroadcastSkipsSmallerPeers => false;

        /// <summary>Whether a flush reports the loss of the only peer (pipes: the sender learns its message is lost).</summary>
        private protected virtual bool FlushReportsSoleLoss => false;

        /// <summary>Raised for each reply sent to one of this server's peers (a socket server counts them as its own).</summary>
        private protected virtual void OnPeerSent(int bytes)
        {
        }

        internal void PeerSent(int bytes) => OnPeerSent(bytes);

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var frame = new OutgoingFrame((FrameType)format, payload);
            List<MessageConnection> targets;
            lock (_gate)
            {
                while (_live.Count == 0)
                {
                    IpcException? nobody = NobodyToSendTo(Interlocked.Read(ref _accepted));
                    if (nobody != null) throw nobody;
                    if (IsClosed) throw ClosedError();
                    if (!GateWait.Wait(_gate, deadline, cancellationToken))
                    {
                        throw new IpcException(IpcErrorKind.SendTimeout, $"Timed out waiting for a client to connect to '{Name}'.", Name);
                    }
                }
                targets = new List<MessageConnection>(_live);
            }
            if (Broadcast(targets, frame, deadline, cancellationToken)) CountSent(payload.Length);
        }

        // Queues the frame on every connection. One that has just left (and, for sockets, one that accepts smaller
        // messages) is skipped, unless every one fails: then that error is thrown. True when at least one took it.
        private bool Broadcast(List<MessageConnection> targets, OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
            IpcException? failure = null;
            int delivered = 0;
            foreach (MessageConnection connection in targets)
            {
                try
                {
                    connection.Enqueue(frame, deadline, cancellationToken);
                    delivered++;
                }
                catch (IpcException e) when ((e.Kind == IpcErrorKind.PeerDisconnected || BroadcastSkipsSmallerPeers && e.Kind == IpcErrorKind.MessageTooLarge) && targets.Count > 1)
                {
                    failure = e;
                }
            }
            if (delivered == 0 && failure != null) throw failure;
            return delivered > 0;
        }

        /// <summary>Waits until every peer wrote what it had queued. One that has left is skipped.</summary>
        public override void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            List<MessageConnection> targets;
            lock (_gate) targets = new List<MessageConnection>(_live);
            foreach (MessageConnection connection in targets)
            {
                try
                {
                    connection.Flush(deadline, cancellationToken);
                }
                catch (IpcException e) when (e.Kind == IpcErrorKind.PeerDisconnected && (!FlushReportsSoleLoss || targets.Count > 1)) { }
            }
        }

        private long _readsByReceivers;

        /// <summary>Reads a receiver made itself on its only client's connection (tests look at it to know that path ran).</summary>
        internal long ReadsByReceivers => Interlocked.Read(ref _readsByReceivers);

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            // One client making requests: read its socket on this thread while its requests keep coming, instead of
            // waiting for its reader thread to hand each one over (one wake-up less per round trip; the handler's reply
            // then goes out from the thread that read the request). See MessageConnection.CallerRead.cs.
            MessageConnection? sole;
            while ((sole = Volatile.Read(ref _soleLive)) != null && _inbound.Count == 0 && !_inbound.IsCompleted)
            {
                if (!sole.ReadForReceiver(deadline, cancellationToken)) break;
                Interlocked.Increment(ref _readsByReceivers);
            }
            int first = into.Count;
            int taken = _inbound.TakeBatch(into, max, deadline, cancellationToken);
            // Handed out: the messages no longer count against the server's receive budget.
            ReceiveBudget? budget = Options.ReceiveBudget;
            if (budget != null)
            {
                for (int i = first; i < into.Count; i++)
                {
                    budget.Release(into[i].BudgetHeld);
                    into[i].BudgetHeld = 0;
                }
            }
            return taken;
        }

        protected override void CloseCore(Deadline deadline)
        {
            StopListening();
            _idleTimer?.Dispose();
            List<MessageConnection> all;
            List<IDisposable> securing;
            lock (_gate)
            {
                all = new List<MessageConnection>(_live);
                all.AddRange(_pending);
                securing = new List<IDisposable>(_securing);
                Monitor.PulseAll(_gate);
            }
            foreach (IDisposable stream in securing) stream.Dispose(); // their handshakes end at once
            foreach (MessageConnection connection in all)
            {
                try { connection.Close(deadline); } catch (IpcException) { } // that client is gone already
            }
            _inbound.CompleteAndClear();
        }

        /// <summary>Ends the stream of messages: nothing more can arrive (a pipe server whose clients all came and went).</summary>
        private protected void CompleteInbound() => _inbound.Complete();

        private void CloseIdleConnections()
        {
            try
            {
                if (IsClosed) return;
                long limit = (long)(Options.IdleTimeout.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
                long now = System.Diagnostics.Stopwatch.GetTimestamp();
                List<MessageConnection>? idle = null;
                lock (_gate)
                {
                    foreach (MessageConnection connection in _live)
                    {
                        if (now - connection.LastActivity > limit) (idle ??= new List<MessageConnection>()).Add(connection);
                    }
                }
                if (idle == null) return;
                foreach (MessageConnection connection in idle)
                {
                    Interlocked.Increment(ref _idleClosed);
                    connection.Expire(new IpcException(IpcErrorKind.IdleTimeout,
                        $"The connection from {connection.RemoteAddress} to '{Name}' was idle (no whole message either way) for {Options.IdleTimeout.TotalSeconds} s and was closed.", Name));
                }
            }
            catch (Exception e)
            {
                // A timer callback must not throw: that would end the process. Report it and sweep again later.
                if (!IsClosed) ReportFault(new IpcException(IpcErrorKind.ConnectFailed, $"Closing idle connections of '{Name}' failed: {e.Message}", Name, e), this);
            }
        }

        /// <summary>Puts an error into the stream of messages, at the point it happened, and counts it.</summary>
        private protected void ReportFault(IpcException fault, IpcChannel sender)
        {
            Interlocked.Increment(ref _connectionErrors);
            CountError();
            Volatile.Write(ref _lastConnectionError, fault);
            try
            {
                // A socket server never waits: one nobody reads must not hold a connection's thread for its error.
                Deadline deadline = WaitsToReportFaults ? Deadline.Infinite : Deadline.After(TimeSpan.Zero);
                _inbound.TryAdd(IpcMessage.ForFault(fault, sender), 64, deadline, CancellationToken.None);
            }
            catch (InvalidOperationException) { } // closed or complete: nobody will read it
        }
    }
}
