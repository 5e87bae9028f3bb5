using System;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Connections
{
    /// <summary>How reading ended when a requester's own read found the end (the reader thread then finishes the connection).</summary>
    internal sealed class ReadEnd
    {
        public ReadEnd(IpcException? fault)
        {
            Fault = fault;
        }

        public IpcException? Fault { get; }
    }

    // The read turn. A thread waiting for its reply (Request) reads the socket itself, as the inline write path
    // writes for a sender: the reply then costs no wake-up of the reader thread and no hand-over to the waiting
    // thread (each 10-20 us on a loaded machine). Whoever holds the turn reads; the reader thread takes it only
    // after poll() says there are bytes, and parks while requesters have been reading in the last few
    // milliseconds, so a request loop does not wake it at all. Only for the PsIpc framing over a plain socket (no
    // TLS stage: the socket must show the stream's bytes). On a server the same turn lets a receiver read the
    // requests of its only client itself (ReadForReceiver), once that client has shown it waits for answers (a
    // Request frame, or a message after this end answered the one before): the handler then answers on the thread that
    // read the request, with no hand-over from the reader thread. One-way streams never switch it on.
    internal sealed partial class MessageConnection
    {
        // How long the reader thread stays parked after a requester last read: beyond it, it reads again (messages
        // that are not replies, a goodbye). A Receive on the channel wakes it at once (WakeReader).
        private static readonly long ParkTicks = Stopwatch.Frequency / 500; // 2 ms
        private const int PollSliceMicroseconds = 100_000; // Ctrl+C and deadlines are checked this often while waiting for bytes
        // The reader thread's wait for bytes is only a safety net: closing shuts the socket down, which ends the poll at
        // once. Short slices cost a wake-up and two runtime transitions each: 1,000 idle clients in one process at 100 ms
        // burnt a fifth of a core, and three quarters of that process's CPU while it was busy (Bench row 9).
        private const int ReaderPollMicroseconds = 1_000_000;

        private readonly object _readGate = new object();
        private bool _readBusy;          // the turn is held (by the reader thread or a requester)
        private bool _readerParked;      // the reader thread waits for the turn
        private bool _readerWanted;      // someone wants the reader thread to read now (a Receive, a large frame)
        private int _turnWaiters;        // requesters waiting for their reply or the turn
        private ReadEnd? _readEnded;     // a requester's read found the end: the reader thread finishes
        private long _lastCallerRead;
        private bool _peerRequested;          // server: the peer waits for answers (a Request, or a message after our answer)
        private volatile bool _receiverReads; // server: a receiver may read (set by the reader thread only, between reads)
        private volatile bool _awaitsAnswer;  // client: it sent a message and has not found the peer quiet since (see ReadForReceiver)

        // Whether reading goes through the turn. A server connection's reader thread switches it on itself, at the top of
        // its loop, after its peer's first request: until then it is the only reader, so nobody reads beside it.
        private bool CallerReads => _socket != null && _connected.DirectSocketWrites && _framing.HasHandshake && (!_isServerSide || _receiverReads);

        // A thread waiting for its own reply reads: clients only (a server drops the replies of its clients).
        private bool RequesterReads => !_isServerSide && CallerReads;

        /// <summary>A Receive is waiting: the reader thread must not stay parked for requesters.</summary>
        public void WakeReader()
        {
            if (!CallerReads || !Volatile.Read(ref _readerParked)) return;
            lock (_readGate)
            {
                _readerWanted = true;
                Monitor.PulseAll(_readGate);
            }
        }

        // The reader thread's turn: parks while a requester reads or read a moment ago, then waits for bytes without
        // the turn (a requester may take it meanwhile) and takes it. Null: go on reading; else how reading ended.
        private ReadEnd? TakeReaderTurn()
        {
            while (true)
            {
                lock (_readGate)
                {
                    // Inside a frame the rest is the reader thread's: a requester or receiver never reads there.
                    while (_readEnded == null && !_abort.IsCancellationRequested &&
                        (_readBusy || (!_readerWanted && !_frameReader!.IsMidFrame && Stopwatch.GetTimestamp() - _lastCallerRead < ParkTicks)))
                    {
                        _readerParked = true;
                        Monitor.Wait(_readGate, 2);
                    }
                    _readerParked = false;
                    if (_readEnded != null) return _readEnded;
                }
                _abort.Token.ThrowIfCancellationRequested();
                if (!_socket!.Poll(ReaderPollMicroseconds, SelectMode.SelectRead)) continue; // also true at the end of the stream
                lock (_readGate)
                {
                    if (_readEnded != null) return _readEnded;
                    if (_readBusy) continue; // a requester took the turn: it reads these bytes
                    _readBusy = true;
                    _readerWanted = false;
                }
                // A requester may have read those bytes between the poll and the turn: never block in read() holding it.
                if (_socket.Poll(0, SelectMode.SelectRead)) return null;
                ReleaseReadTurn(byCaller: false);
            }
        }

        private void ReleaseReadTurn(bool byCaller)
        {
            lock (_readGate)
            {
                _readBusy = false;
                if (byCaller) _lastCallerRead = Stopwatch.GetTimestamp();
                // Only requesters waiting for the turn, or a reader thread that is wanted, need waking: a parked reader
                // thread would only see the caller's fresh read and park again (a context switch per round trip).
                if (_turnWaiters > 0 || _readerWanted || !byCaller) Monitor.PulseAll(_readGate);
            }
        }

        // A reply was handed to a request, or requests failed: wake requesters waiting for the turn.
        private void PulseTurnWaiters()
        {
            if (Volatile.Read(ref _turnWaiters) == 0) return;
            lock (_readGate) Monitor.PulseAll(_readGate);
        }

        /// <summary>
        /// Waits for <paramref name="pending"/>'s reply, reading the socket on this thread while nobody else does.
        /// False at the deadline.
        /// </summary>
        private bool WaitReadingMyself(PendingReply pending, Deadline deadline, CancellationToken cancellationToken)
        {
            while (!pending.IsDone)
            {
                lock (_readGate)
                {
                    if (pending.IsDone) return true;
                    if (_readEnded == null && !_readBusy && MayReadHere())
                    {
                        _readBusy = true; // the turn is ours: read below
                    }
                    else
                    {
                        // The reader thread or another requester reads (and hands us our reply), or we may not read here.
                        _turnWaiters++;
                        try
                        {
                            if (!_readBusy && _readEnded == null) _readerWanted = true; // e.g. a large message: the reader thread's job
                            Monitor.PulseAll(_readGate);
                            if (!GateWait.Wait(_readGate, Deadline.Earliest(deadline, Deadline.After(TimeSpan.FromMilliseconds(100))), cancellationToken) &&
                                deadline.HasExpired)
                            {
                                return pending.IsDone;
                            }
                        }
                        finally
                        {
                            _turnWaiters--;
                        }
                        continue;
                    }
                }
                try
                {
                    if (!ReadUntil(pending, deadline, cancellationToken)) return pending.IsDone;
                }
                finally
                {
                    ReleaseReadTurn(byCaller: true);
                }
            }
            return true;
        }

        // Holding the turn: reads until the reply came, the deadline, the end of the stream or a large frame begins.
        // False at the deadline.
        private bool ReadUntil(PendingReply pending, Deadline deadline, CancellationToken cancellationToken)
        {
            while (!pending.IsDone)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!MayReadHere()) return true; // give the turn back: the caller waits for the reader thread
                int ms = deadline.RemainingMilliseconds;
                if (ms == 0) return false;
                int slice = ms < 0 || ms * 1000L > PollSliceMicroseconds ? PollSliceMicroseconds : ms * 1000;
                if (PollAndReadOnce(slice, cancellationToken) == true) return true;
            }
            return true;
        }

        /// <summary>
        /// For a receiver that found its channel's queue empty: reads the socket on the receiver's thread while answers
        /// keep coming, instead of waiting for the reader thread to hand each one over. Server side: while this is the
        /// server's only connection and its client has shown it waits for answers. Client side: after this end sent a
        /// message (a Send-IpcMessage then Receive-IpcMessage loop), until the peer was quiet for a moment. True after
        /// one read (what it completed is in the owner's queue); false when the receiver should wait for the reader
        /// thread instead: no answer is awaited, another thread reads, a large frame is under way, nothing came for a
        /// moment (the reader thread then reads again), the deadline passed, or the connection ended.
        /// </summary>
        public bool ReadForReceiver(Deadline deadline, CancellationToken cancellationToken)
        {
            if (_isServerSide ? !_receiverReads : !(_awaitsAnswer && CallerReads)) return false;
            lock (_readGate)
            {
                if (_readEnded != null || _readBusy || !MayReadHere())
                {
                    _readerWanted = true; // the reader thread reads what comes (and must not stay parked for us)
                    Monitor.PulseAll(_readGate);
                    return false;
                }
                _readBusy = true;
            }
            bool read = false;
            try
            {
                read = ReadOnceAsReceiver(deadline, cancellationToken);
            }
            finally
            {
                // Read: the reader thread stays parked (a request loop wakes it not at all); not read: it reads from now on.
                lock (_readGate) _readerWanted = !read;
                if (!read) _awaitsAnswer = false; // a client's peer that was quiet: its next message goes to the reader thread
                ReleaseReadTurn(byCaller: read);
            }
            return read;
        }

        // Holding the turn: waits for bytes at most ParkTicks (and the deadline), then reads once. False when nothing came.
        private bool ReadOnceAsReceiver(Deadline deadline, CancellationToken cancellationToken)
        {
            long quietUntil = Stopwatch.GetTimestamp() + ParkTicks;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                long left = quietUntil - Stopwatch.GetTimestamp();
                int ms = deadline.RemainingMilliseconds;
                if (left <= 0 || ms == 0) return false;
                // Socket.Poll waits whole milliseconds on Unix (less is a poll that returns at once): round up.
                long waitMs = (left * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency;
                if (ms > 0 && ms < waitMs) waitMs = ms;
                if (PollAndReadOnce((int)waitMs * 1000, cancellationToken) == null) continue;
                return true;
            }
        }

        // Holding the turn: waits for bytes at most <microseconds>, then reads once. Null: nothing came; false: read, go
        // on; true: reading ended here, and the reader thread ends the connection (once, in its own way), which fails
        // every waiting request.
        private bool? PollAndReadOnce(int microseconds, CancellationToken cancellationToken)
        {
            IpcException? fault = null;
            bool halfClosed = false;
            bool stop;
            try
            {
                int n = WaitForBytes(microseconds, out bool ready);
                if (n >= 0) stop = FinishRead(n, false, _readBuffer!, ref fault, ref halfClosed); // the spin read them
                else if (!ready) return null;
                else stop = ReadOnce(ref fault, ref halfClosed);
            }
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                fault = ReadFailure(e);
                stop = true;
            }
            catch (InvalidOperationException)
            {
                stop = true; // the owner's queue was completed: it closed
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                stop = true; // this connection was aborted while its messages waited for room: not this caller's Ctrl+C
            }
            if (!stop) return false;
            lock (_readGate)
            {
                _readEnded ??= new ReadEnd(fault);
                Monitor.PulseAll(_readGate);
            }
            return true;
        }

        // How long a requester (for its reply) and a receiver (for its sole client's next request) poll without blocking
        // before they sleep in poll(): a blocked thread's wake-up and the sender's wake-up call are the largest costs of
        // a local round trip on this machine (perf of an Invoke-IpcRequest loop: a quarter of the client's CPU enabling
        // interrupts in the hypervisor, a sixth under send()), and a peer that answers within these bounds is read
        // without either. Between polls the thread yields its core.
        // Only while the waits stay short (see WaitForBytes), and never on one core.
        private static readonly long RequesterSpinTicks = SpinTicks(100);
        private static readonly long ReceiverSpinTicks = SpinTicks(200);
        private long _lastByteWaitTicks; // how long the last wait for bytes on this connection took

        private static long SpinTicks(int microseconds) =>
            Environment.ProcessorCount > 1 ? Stopwatch.Frequency * microseconds / 1_000_000 : 0;

        // Holding the turn (and never inside a frame, see MayReadHere): waits at most <microseconds> for bytes. Spins first
        // while the previous wait was shorter than the spin bound: a peer that answers at once (a request loop) is met
        // spinning; one that is slow or idle, or a machine too busy to answer within the bound, goes back to a plain
        // blocking poll until a wait is short again. Where the platform has it, each spin step is a read that does not
        // block (NonBlockingSocket), which takes the bytes in the same system call that finds them: the count it read is
        // returned (0: the end of the stream). Otherwise -1, and ready says whether bytes can be read now.
        private int WaitForBytes(int microseconds, out bool ready)
        {
            long start = Stopwatch.GetTimestamp();
            long spin = _isServerSide ? ReceiverSpinTicks : RequesterSpinTicks;
            ready = false;
            int read = -1;
            if (spin > 0 && Volatile.Read(ref _lastByteWaitTicks) < spin)
            {
                long until = start + Math.Min(spin, microseconds * Stopwatch.Frequency / 1_000_000);
                bool readInSpin = NonBlockingSocket.IsSupported;
                while (true)
                {
                    if (readInSpin)
                    {
                        read = NonBlockingSocket.TryReceive(_socket!, _readBuffer!, 0, _readBuffer!.Length);
                        if (read >= 0) break;
                    }
                    else if (ready = _socket!.Poll(0, SelectMode.SelectRead))
                    {
                        break;
                    }
                    if (Stopwatch.GetTimestamp() >= until) break;
                    Thread.Yield();
                }
            }
            if (read < 0 && !ready)
            {
                long left = microseconds - (Stopwatch.GetTimestamp() - start) * 1_000_000 / Stopwatch.Frequency;
                ready = left > 0 && _socket!.Poll((int)left, SelectMode.SelectRead);
            }
            Volatile.Write(ref _lastByteWaitTicks, Stopwatch.GetTimestamp() - start);
            return read;
        }

        // A requester reads only what cannot block its delivery: never inside a frame (a large message is the
        // reader thread's, whose delivery may wait for room), and only while the channel's queue has room for
        // everything one read can complete.
        private bool MayReadHere()
        {
            if (_frameReader == null || _frameReader.IsMidFrame || IsEnded) return false;
            BoundedQueue<IpcMessage> inbound = _owner.Inbound;
            return inbound.Count < _options.ReceiveBufferMessages / 2 && inbound.Bytes < _options.ReceiveBufferBytes / 2;
        }
    }
}
