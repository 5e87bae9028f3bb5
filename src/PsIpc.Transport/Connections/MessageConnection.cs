using System;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Platform;
using PsIpc.Transport.Sockets;

namespace PsIpc.Transport.Connections
{
    /// <summary>Why a connection ended. Set once: the first reason wins, and only a fault is reported.</summary>
    internal enum ShutdownReason
    {
        None,
        ClosedLocally,
        PeerLeft,
        Refused,
        Faulted,
    }

    /// <summary>
    /// One message connection over a byte stream, whatever carries it (a pipe, a TCP or Unix socket, after any TLS
    /// or secret stage) and whatever its framing (the PsIpc protocol, Line, Raw). It reads on a reader thread or, on
    /// a server with many clients, asynchronously on the thread pool; it writes a sporadic small message inline on
    /// the caller's thread and everything else through a drain started on the thread pool when frames are queued
    /// (Kestrel's shape: separate receive and send loops, one shutdown, abort cancels the pending read). One phase
    /// value changes atomically and one shutdown reason is kept.
    /// Files: this one (state and lifecycle), .Write.cs (send path), .Drain.cs (write turn, drain, hello), .Read.cs
    /// (receive path), .ReadAsync.cs (the thread pool's read loop), .CallerRead.cs (a requester reads its reply),
    /// .Requests.cs (request/reply).
    /// </summary>
    [SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
        Justification = "Its life ends in Shutdown, which releases the stream and the timer. The events and the token source are " +
            "left to the collector: threads may still wait on them after the end, and without a wait handle asked for they hold nothing to release.")]
    internal sealed partial class MessageConnection
    {
        private const int BufferSize = 64 * 1024;
        private const int ShutdownLockWaitMilliseconds = 2000; // see ShutdownStream: a safety net, normally microseconds
        private static int s_nextId;

        private enum Phase
        {
            Opening,
            Open,
            HalfClosed, // a Line/Raw peer shut down its sending side and still reads our replies
            Ended,
        }

        private readonly ConnectedStream _connected;
        private readonly Stream _stream;
        private readonly Socket? _socket;
        private readonly IConnectionOwner _owner;
        private readonly MessageFraming _framing;
        private readonly ChannelOptions _options;
        private readonly bool _isServerSide;
        private readonly CancellationTokenSource _abort = new CancellationTokenSource();
        private readonly ManualResetEventSlim _opened = new ManualResetEventSlim(false);
        private readonly ManualResetEventSlim _readerDone = new ManualResetEventSlim(false);
        private Action? _readLoop;
        private bool _readsOnPool;    // no reader thread: ReadLoopAsync (set by the owner before Start)
        private bool _readerStarted;
        private Timer? _handshakeTimer;
        private int _phase = (int)Phase.Opening;
        private int _reason = (int)ShutdownReason.None;
        private IpcException? _fault;
        private int _endedOnce;

        /// <param name="isServerSide">A server answers the client's hello with its own (or an error refusing it);
        /// a client speaks first.</param>
        public MessageConnection(ConnectedStream connected, IConnectionOwner owner, MessageFraming framing, ChannelOptions options,
            string channelName, bool isServerSide)
        {
            _connected = connected;
            _stream = connected.Stream;
            _socket = connected.Socket;
            _sendsWithoutPoll = _socket != null && _socket.AddressFamily == AddressFamily.Unix && NonBlockingSocket.IsSupported;
            _owner = owner;
            _framing = framing;
            _options = options;
            _isServerSide = isServerSide;
            ChannelName = channelName;
            Id = Interlocked.Increment(ref s_nextId);
            _outbound = new BoundedQueue<OutgoingFrame>(int.MaxValue, options.SendBufferBytes);
            _helloSent = !framing.HasHandshake; // nothing to say first: inline writes may start at once
        }

        public int Id { get; }

        public string ChannelName { get; }

        public MessageFraming Framing => _framing;

        public PeerIdentity Identity => _connected.Identity;

        public string RemoteAddress => _connected.Identity.RemoteAddress;

        public Socket? Socket => _socket;

        public Hello? PeerHello { get; private set; }

        /// <summary>The process id from the peer's hello (0 without one).</summary>
        public int PeerProcessId => PeerHello?.ProcessId ?? 0;

        /// <summary>The largest message the peer accepts (from its hello; int.MaxValue without one).</summary>
        public int PeerMaxMessageSize => PeerHello?.MaxMessageSize ?? int.MaxValue;

        /// <summary>The channel that appears as the sender of this connection's messages.</summary>
        public IpcChannel? SenderView { get; set; }

        /// <summary>The channel whose received-message counters this connection updates.</summary>
        public IpcChannel? CountersOf { get; set; }

        public DateTime ConnectedAt { get; } = DateTime.Now;

        /// <summary>
        /// Reads asynchronously on the thread pool instead of on a reader thread of its own, and writes asynchronously:
        /// no thread per connection. A server's connections beyond its first few (see ServerChannel). Set before Start;
        /// clients keep their reader thread, which their requesters' read turn is built on.
        /// </summary>
        public bool ReadsOnThreadPool
        {
            get => _readsOnPool;
            set => _readsOnPool = value && _isServerSide;
        }

        public bool IsEnded => Volatile.Read(ref _phase) == (int)Phase.Ended;

        /// <summary>Why the connection ended, if it failed; null while it works or after a clean end.</summary>
        public IpcException? Fault => Reason == ShutdownReason.Faulted ? Volatile.Read(ref _fault) : null;

        private ShutdownReason Reason => (ShutdownReason)Volatile.Read(ref _reason);

        private bool ClosedHere => Reason == ShutdownReason.ClosedLocally;

        /// <summary>When a whole message last arrived or was sent (Stopwatch ticks). Bytes of an unfinished message do not count.</summary>
        public long LastActivity => Math.Max(Interlocked.Read(ref _lastReceivedTicks), Interlocked.Read(ref _lastEnqueueTicks));

        /// <summary>
        /// Starts the loops. Without a handshake the connection is open at once: the owner may refuse it here
        /// (false: it was closed and nothing started).
        /// </summary>
        public bool Start()
        {
            if (!_framing.HasHandshake)
            {
                IpcException? refusal = _owner.OnOpened(this);
                if (refusal != null)
                {
                    TrySetReason(ShutdownReason.Refused, null);
                    ShutdownStream();
                    End(null);
                    return false;
                }
                Interlocked.CompareExchange(ref _phase, (int)Phase.Open, (int)Phase.Opening);
                _opened.Set();
            }
            else
            {
                _handshakeTimer = new Timer(_ => OnHandshakeTimeout(), null, _options.HandshakeTimeout, Timeout.InfiniteTimeSpan);
            }
            if (_framing.HasHandshake && !_isServerSide) SendHello(); // a client speaks first; a server answers once it accepted the client's
            _readerStarted = true;
            if (_readsOnPool)
            {
                _ = ReadLoopAsync(); // runs here until its first read waits
                return true;
            }
            // A reader thread of its own, reused from a connection that ended (no thread start per connection).
            ReaderThreads.Run(_readLoop ??= ReadLoop);
            return true;
        }

        /// <summary>Waits until the connection is open (the peer's hello). False on deadline; throws the fault if it ended.</summary>
        public bool WaitForOpen(Deadline deadline, CancellationToken cancellationToken)
        {
            WaitHandle[] handles = { _opened.WaitHandle, _readerDone.WaitHandle, cancellationToken.WaitHandle };
            int index = WaitHandle.WaitAny(handles, deadline.RemainingMilliseconds);
            if (_opened.IsSet && !IsEnded) return true;
            cancellationToken.ThrowIfCancellationRequested();
            if (index == WaitHandle.WaitTimeout) return false;
            if (_opened.IsSet) return true; // opened, then ended at once: what it sent is queued already
            throw Fault ?? new IpcException(IpcErrorKind.PeerDisconnected,
                $"The peer of '{ChannelName}' closed the connection before the PsIpc handshake.", ChannelName);
        }

        /// <summary>Writes what is queued, says goodbye where the framing has a way to, closes. Falls back to abort at the deadline.</summary>
        public void Close(Deadline deadline)
        {
            TrySetReason(ShutdownReason.ClosedLocally, null);
            if (_framing.HasHandshake && PeerHello == null)
            {
                Abort(null); // no handshake yet: nothing was exchanged that a goodbye would protect
                return;
            }
            _outbound.Complete();
            EnsureDrain(); // writes what is queued, then the goodbye
            if (_writerDone.Wait(deadline.RemainingMilliseconds))
            {
                if (_framing.LingersOnClose)
                {
                    int ms = deadline.RemainingMilliseconds;
                    _readerDone.Wait(ms < 0 || ms > 200 ? 200 : ms);
                }
            }
            Abort(null);
        }

        /// <summary>Ends the connection now, dropping what is queued. <paramref name="reason"/> is reported as its fault.</summary>
        public void Abort(IpcException? reason)
        {
            TrySetReason(reason == null ? ShutdownReason.ClosedLocally : ShutdownReason.Faulted, reason);
            try { _abort.Cancel(); } catch (ObjectDisposedException) { }
            ShutdownStream();
            PulseFlushWaiters();
            // Never started, or half-closed (the reader left without ending it): nobody else will report the end.
            if (!_readerStarted || _readerDone.IsSet) End(Fault);
        }

        /// <summary>
        /// Ends the connection for <paramref name="reason"/>, first sending it as an error frame when the framing has
        /// them and that cannot block (no write in progress, room in the socket): a peer that does not read is just cut.
        /// </summary>
        public void Expire(IpcException reason)
        {
            if (_framing.HasHandshake && _helloSent && _socket != null && TryTakeWriteTurn())
            {
                try
                {
                    if (_outbound.Count == 0 && _socket.Poll(0, SelectMode.SelectWrite))
                    {
                        WriteControlFrame(FrameType.Error, ErrorFrame.Encode(reason.Kind, reason.Message));
                    }
                }
                catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException) { }
                finally
                {
                    ReleaseWriteTurn();
                }
            }
            Abort(reason);
        }

        private bool TrySetReason(ShutdownReason reason, IpcException? fault)
        {
            if (Interlocked.CompareExchange(ref _reason, (int)reason, (int)ShutdownReason.None) != (int)ShutdownReason.None) return false;
            if (fault != null) Volatile.Write(ref _fault, fault);
            return true;
        }

        private void OnHandshakeTimeout()
        {
            if (PeerHello != null || IsEnded) return;
            Abort(new IpcException(IpcErrorKind.HandshakeTimeout,
                $"The peer of '{ChannelName}' did not complete the PsIpc handshake within {_options.HandshakeTimeout.TotalSeconds} s.", ChannelName));
        }

        // Called once, by the reader as it leaves (or by Abort when no reader runs): tells the owner.
        private void End(IpcException? fault)
        {
            if (Interlocked.Exchange(ref _endedOnce, 1) != 0) return;
            if (fault != null) TrySetReason(ShutdownReason.Faulted, fault);
            HttpSniffStream? sniff = _connected.Sniff;
            if (sniff != null && sniff.SawHttp && Reason != ShutdownReason.ClosedLocally)
            {
                Volatile.Write(ref _reason, (int)ShutdownReason.Faulted);
                Volatile.Write(ref _fault, HttpSniffer.Refusal(ChannelName));
            }
            Volatile.Write(ref _phase, (int)Phase.Ended); // first, so that a writer woken below says nothing more
            _handshakeTimer?.Dispose();
            _outbound.CompleteAndClear(); // the peer is gone: what is still queued can no longer be delivered
            _writerDone.Set(); // nor will anything else be written: a Close need not wait for a drain
            try { _abort.Cancel(); } catch (ObjectDisposedException) { }
            PulseFlushWaiters();
            FailPendingRequests(Fault);
            _owner.OnEnded(this, Fault);
            ShutdownStream();
        }

        // Ends the stream, from whichever thread ends the connection (the reader at the peer's end, Abort, Expire, the
        // handshake timer) while the writer may be writing. Disposing a stream under a running Write is not safe:
        // NetworkStream.Write checks "disposed" and then "writable", and Dispose clears both in that order, so a
        // Dispose landing between the two checks makes Write throw InvalidOperationException ("The stream does not
        // support writing") instead of ObjectDisposedException. That crashed the CI fuzz run's test host: a server's
        // writer was sending its hello while the reader, at the client's end of stream, disposed the stream.
        // Every write to the stream holds the write turn, so the stream is disposed holding it, between writes. A writer
        // blocked in write() (a peer that does not read) holds the turn: shutting the socket down first makes its
        // write fail at once (and a blocked read return 0), so the turn comes free. The wait is bounded all the same:
        // past it the stream is disposed as before, and the writer's catch copes with what that throws.
        private void ShutdownStream()
        {
            bool took = false;
            try
            {
                if (_socket != null)
                {
                    try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
                    took = TakeWriteTurn(Deadline.After(TimeSpan.FromMilliseconds(ShutdownLockWaitMilliseconds)));
                }
                try { _stream.Dispose(); } catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException) { }
            }
            finally
            {
                if (took) ReleaseWriteTurn();
            }
        }
    }
}
