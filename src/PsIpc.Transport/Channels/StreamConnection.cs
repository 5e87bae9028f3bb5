using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    /// <summary>What a connection tells the channel that owns it.</summary>
    internal interface IConnectionOwner
    {
        /// <summary>Where received messages go (a server merges all its connections here).</summary>
        BoundedQueue<IpcMessage> Inbound { get; }

        /// <summary>The peer said hello. Return an error to refuse it (sent to the peer, then closed).</summary>
        IpcException OnHello(StreamConnection connection);

        /// <summary>The connection ended: goodbye, EOF, fault or local close. Called once, after the last message was queued.</summary>
        void OnEnded(StreamConnection connection, IpcException fault);
    }

    /// <summary>
    /// One PsIpc connection over a duplex byte stream, with a reader thread and a writer thread
    /// (Kestrel's shape: separate receive and send loops, idempotent shutdown, abort cancels the pending read).
    /// The writer drains its queue into one buffer per write, so small messages share a system call when
    /// they pile up and go out at once when the sender pauses. The reader cuts frames with
    /// <see cref="FrameParser"/> and hands batches of messages to the owner's bounded queue; when that is
    /// full it stops reading, and the peer's writes block: back-pressure end to end.
    /// </summary>
    internal sealed class StreamConnection : IConnection
    {
        private const int BufferSize = 64 * 1024;
        private const int MaxBatch = 4096;

        // A frame this small, sent when the connection has been idle this long, is written on the caller's
        // thread: a request/reply loop then pays no thread hand-off. Streams of messages still go through the
        // writer thread, which batches them.
        private const int InlineMaxFrame = 4096;
        private static readonly long InlineIdleTicks = Stopwatch.Frequency / 50000; // 20 us
        private static int s_nextId;

        private readonly Stream _stream;
        private readonly Socket _socket;           // set for socket-backed streams, for shutdown(SHUT_WR)
        private readonly IConnectionOwner _owner;
        private readonly ChannelOptions _options;
        private readonly BoundedQueue<OutgoingFrame> _outbound;
        private readonly CancellationTokenSource _abort = new CancellationTokenSource();
        private readonly object _writeLock = new object();
        private readonly object _flushGate = new object();
        private readonly ManualResetEventSlim _helloReceived = new ManualResetEventSlim(false);
        private readonly ManualResetEventSlim _writerDone = new ManualResetEventSlim(false);
        private readonly ManualResetEventSlim _readerDone = new ManualResetEventSlim(false);
        private Thread _reader, _writer;
        private Timer _handshakeTimer;
        private long _framesQueued, _framesWritten;
        private volatile IpcException _fault;
        private volatile bool _localClose;
        private volatile bool _ended;
        private volatile bool _refused; // we turned the peer away (server full): not a fault of ours to report
        private int _endedOnce;
        private readonly bool _isServerSide;
        private readonly byte[] _inlineBuffer = new byte[InlineMaxFrame];
        private long _lastEnqueueTicks;
        private long _bytesReceived;
        private long _lastReceivedTicks = Stopwatch.GetTimestamp(); // the start counts as activity
        private volatile bool _helloSent; // nothing may be written inline before our Hello

        /// <param name="isServerSide">A server answers the client's Hello with its own (or an Error refusing it);
        /// a client speaks first.</param>
        public StreamConnection(Stream stream, Socket socket, IConnectionOwner owner, ChannelOptions options, string channelName, bool isServerSide)
        {
            _isServerSide = isServerSide;
            _stream = stream;
            _socket = socket;
            _owner = owner;
            _options = options;
            ChannelName = channelName;
            Id = Interlocked.Increment(ref s_nextId);
            _outbound = new BoundedQueue<OutgoingFrame>(int.MaxValue, options.SendBufferBytes);
        }

        public int Id { get; }
        public string ChannelName { get; }

        /// <summary>
        /// Whether a small frame may be written straight to the socket (bypassing the stream). False when the
        /// stream transforms the bytes (TLS); the socket is then used only to see whether it can take a write.
        /// </summary>
        public bool DirectSocketWrites { get; set; } = true;
        public Hello PeerHello { get; private set; }

        public int PeerProcessId => PeerHello?.ProcessId ?? 0;

        /// <summary>The channel object that appears as the sender of this connection's messages.</summary>
        public IpcChannel SenderView { get; set; }

        /// <summary>The channel whose received-message counters this connection updates.</summary>
        public IpcChannel CountersOf { get; set; }

        public bool IsEnded => _ended;
        public IpcException Fault => _fault;
        public DateTime ConnectedAt { get; } = DateTime.Now;

        /// <summary>When a whole message last arrived or was sent (Stopwatch ticks). Bytes of an unfinished message do not count.</summary>
        public long LastActivity => Math.Max(Interlocked.Read(ref _lastReceivedTicks), Interlocked.Read(ref _lastEnqueueTicks));

        /// <summary>
        /// Ends the connection for <paramref name="reason"/>, first sending it as an Error frame when that
        /// cannot block (no write in progress, room in the socket): a peer that does not read is just cut.
        /// </summary>
        public void Expire(IpcException reason)
        {
            if (_helloSent && _socket != null && Monitor.TryEnter(_writeLock))
            {
                try
                {
                    if (_outbound.Count == 0 && _socket.Poll(0, SelectMode.SelectWrite))
                    {
                        WriteFrameNow(FrameType.Error, ErrorFrame.Encode(reason.Kind, reason.Message));
                    }
                }
                catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException) { }
                finally
                {
                    Monitor.Exit(_writeLock);
                }
            }
            Abort(reason);
        }

        public void Start()
        {
            _writer = new Thread(WriteLoop, 256 * 1024) { IsBackground = true, Name = $"PsIpc writer {ChannelName}#{Id}" };
            _reader = new Thread(ReadLoop, 256 * 1024) { IsBackground = true, Name = $"PsIpc reader {ChannelName}#{Id}" };
            _handshakeTimer = new Timer(_ => OnHandshakeTimeout(), null, _options.HandshakeTimeout, Timeout.InfiniteTimeSpan);
            _writer.Start();
            _reader.Start();
        }

        /// <summary>Waits for the peer's Hello. False on deadline; throws the connection's fault if it ended.</summary>
        public bool WaitForHello(Deadline deadline, CancellationToken cancellationToken)
        {
            WaitHandle[] handles = { _helloReceived.WaitHandle, _readerDone.WaitHandle, cancellationToken.WaitHandle };
            int index = WaitHandle.WaitAny(handles, deadline.RemainingMilliseconds);
            if (_helloReceived.IsSet) return true;
            cancellationToken.ThrowIfCancellationRequested();
            if (index == WaitHandle.WaitTimeout) return false;
            throw _fault ?? new IpcException(IpcErrorKind.PeerDisconnected,
                $"The peer of '{ChannelName}' closed the connection before the PsIpc handshake.", ChannelName);
        }

        public void Enqueue(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
            ThrowIfUnusable();
            if (PeerHello != null && frame.Payload.Length > PeerHello.MaxMessageSize)
            {
                throw new IpcException(IpcErrorKind.MessageTooLarge,
                    $"The message is {frame.Payload.Length} bytes; the peer of '{ChannelName}' accepts at most {PeerHello.MaxMessageSize}.", ChannelName);
            }
            if (TryWriteInline(frame)) return;
            bool added;
            try
            {
                added = _outbound.TryAdd(frame, frame.WireSize, deadline, cancellationToken);
            }
            catch (InvalidOperationException)
            {
                ThrowIfUnusable();
                throw;
            }
            if (!added)
            {
                throw new IpcException(IpcErrorKind.SendTimeout,
                    $"Timed out waiting for room to send on '{ChannelName}': the peer is not reading.", ChannelName);
            }
            Interlocked.Increment(ref _framesQueued);
        }

        private bool TryWriteInline(OutgoingFrame frame)
        {
            long now = Stopwatch.GetTimestamp();
            long last = _lastEnqueueTicks;
            _lastEnqueueTicks = now;
            if (_socket == null || !DirectSocketWrites || frame.WireSize > InlineMaxFrame || now - last < InlineIdleTicks || !_helloSent) return false;
            if (!Monitor.TryEnter(_writeLock)) return false;
            try
            {
                // The writer takes its batches under this lock, so an empty queue here means nothing is in flight.
                if (_outbound.Count != 0 || _ended) return false;
                if (!_socket.Poll(0, SelectMode.SelectWrite)) return false; // never block the caller in write()
                int length = frame.Payload.Length;
                FrameHeader.Write(_inlineBuffer, 0, length, frame.Type);
                Buffer.BlockCopy(frame.Payload, 0, _inlineBuffer, FrameHeader.Size, length);
                _socket.Send(_inlineBuffer, 0, FrameHeader.Size + length, SocketFlags.None);
                Interlocked.Increment(ref _framesQueued);
                lock (_flushGate) _framesWritten++;
                return true;
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                SetFault(new IpcException(IpcErrorKind.PeerDisconnected,
                    $"Writing to the peer of '{ChannelName}' failed: the peer has gone ({e.Message}).", ChannelName, e));
                throw new IpcException(IpcErrorKind.PeerDisconnected, _fault.Message, ChannelName, e);
            }
            finally
            {
                Monitor.Exit(_writeLock);
            }
        }

        /// <summary>Waits until everything queued so far was written to the stream.</summary>
        public void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            long target = Interlocked.Read(ref _framesQueued);
            lock (_flushGate)
            {
                while (_framesWritten < target)
                {
                    ThrowIfUnusable();
                    cancellationToken.ThrowIfCancellationRequested();
                    int ms = deadline.RemainingMilliseconds;
                    if (ms == 0)
                    {
                        throw new IpcException(IpcErrorKind.FlushTimeout,
                            $"Timed out while {target - _framesWritten} message(s) still waited to be written to '{ChannelName}'.", ChannelName);
                    }
                    // Short waits so that cancellation and faults are seen promptly without a registration.
                    Monitor.Wait(_flushGate, ms < 0 || ms > 50 ? 50 : ms);
                }
            }
        }

        /// <summary>Writes what is queued, says goodbye, closes. Falls back to abort at the deadline.</summary>
        public void Close(Deadline deadline)
        {
            _localClose = true;
            if (PeerHello == null)
            {
                Abort(null); // no handshake yet: nothing was exchanged that a goodbye would protect
                return;
            }
            _outbound.Complete();
            if (!_writerDone.Wait(deadline.RemainingMilliseconds))
            {
                Abort(null);
            }
            try { _abort.Cancel(); } catch (ObjectDisposedException) { }
            ShutdownStream();
        }

        /// <summary>Ends the connection now, dropping what is queued. <paramref name="reason"/> is reported as its fault.</summary>
        public void Abort(IpcException reason)
        {
            if (reason != null && _fault == null) _fault = reason;
            if (reason == null) _localClose = true;
            try { _abort.Cancel(); } catch (ObjectDisposedException) { }
            ShutdownStream();
        }

        private void ThrowIfUnusable()
        {
            if (_fault != null)
            {
                throw new IpcException(_fault.Kind == IpcErrorKind.ChannelClosed ? IpcErrorKind.ChannelClosed : IpcErrorKind.PeerDisconnected,
                    $"'{ChannelName}' can no longer send: {_fault.Message}", ChannelName, _fault);
            }
            if (_ended || _outbound.IsCompleted)
            {
                throw new IpcException(IpcErrorKind.PeerDisconnected,
                    $"The peer of '{ChannelName}' has closed the connection.", ChannelName);
            }
        }

        private void WriteLoop()
        {
            try
            {
                if (_isServerSide)
                {
                    _helloReceived.Wait(_abort.Token); // answer only a client whose Hello was accepted
                }
                WriteFrameNow(FrameType.Hello, new Hello(Hello.CurrentVersion, Process.GetCurrentProcess().Id, _options.MaxMessageSize).ToPayload());
                _helloSent = true;
                var buffer = new byte[BufferSize];
                var batch = new List<OutgoingFrame>(256);
                while (true)
                {
                    batch.Clear();
                    int queued = _outbound.WaitForItems(Deadline.Infinite, _abort.Token);
                    if (queued < 0) break;
                    LetBatchGrow(queued);
                    int n;
                    lock (_writeLock)
                    {
                        n = _outbound.TakeBatch(batch, MaxBatch, Deadline.After(TimeSpan.Zero), _abort.Token);
                        if (n <= 0) continue;
                        WriteBatch(batch, buffer);
                    }
                    lock (_flushGate)
                    {
                        _framesWritten += n;
                        Monitor.PulseAll(_flushGate);
                    }
                }
                if (_ended) return; // the peer left first: nobody to say goodbye to
                WriteFrameNow(FrameType.Goodbye, new byte[0]);
                try { _socket?.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
            }
            catch (OperationCanceledException) { }
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                if (!_localClose && !_ended)
                {
                    SetFault(new IpcException(IpcErrorKind.PeerDisconnected,
                        $"Writing to the peer of '{ChannelName}' failed: the peer has gone ({e.Message}).", ChannelName, e));
                }
                _outbound.CompleteAndClear();
                ShutdownStream();
            }
            finally
            {
                lock (_flushGate) Monitor.PulseAll(_flushGate);
                _writerDone.Set();
            }
        }

        // A few small messages here mean a stream has started (sporadic messages are written inline), so
        // give the producer a few microseconds to queue more: one write for many messages beats one wake-up
        // and write each. Pure spinning, bounded: SpinWait.SpinOnce would escalate to Sleep(1), a millisecond
        // per batch, which is what large messages would then pay.
        private void LetBatchGrow(int queued)
        {
            if (queued >= 64 || _outbound.Bytes >= 16 * 1024) return;
            for (int i = 0; i < 16 && _outbound.Count < 64; i++) Thread.SpinWait(30);
        }

        private void WriteBatch(List<OutgoingFrame> batch, byte[] buffer)
        {
            lock (_writeLock)
            {
                int used = 0;
                foreach (OutgoingFrame frame in batch)
                {
                    int length = frame.Payload.Length;
                    if (used + FrameHeader.Size + length <= buffer.Length)
                    {
                        FrameHeader.Write(buffer, used, length, frame.Type);
                        Buffer.BlockCopy(frame.Payload, 0, buffer, used + FrameHeader.Size, length);
                        used += FrameHeader.Size + length;
                        continue;
                    }
                    // Too big for what is left: send the buffer, then the header and the payload as they are.
                    if (used + FrameHeader.Size > buffer.Length)
                    {
                        _stream.Write(buffer, 0, used);
                        used = 0;
                    }
                    FrameHeader.Write(buffer, used, length, frame.Type);
                    used += FrameHeader.Size;
                    _stream.Write(buffer, 0, used);
                    used = 0;
                    _stream.Write(frame.Payload, 0, length);
                }
                if (used > 0) _stream.Write(buffer, 0, used);
                _stream.Flush();
            }
        }

        private void WriteFrameNow(FrameType type, byte[] payload)
        {
            lock (_writeLock)
            {
                byte[] frame = FrameHeader.Frame(type, payload);
                _stream.Write(frame, 0, frame.Length);
                _stream.Flush();
            }
        }

        private void ReadLoop()
        {
            var buffer = new byte[BufferSize];
            var parser = new FrameParser(_options.MaxMessageSize) { RequireHelloFirst = true, Budget = _options.ReceiveBudget };
            var frames = new List<Frame>(256);
            var messages = new List<IpcMessage>(256);
            IpcException fault = null;
            try
            {
                while (true)
                {
                    // Inside a large payload, read straight into it: one copy less, and far fewer reads.
                    ArraySegment<byte> direct;
                    try
                    {
                        direct = parser.DirectTarget(BufferSize); // grows the payload: may not fit the budget
                    }
                    catch (IpcException e)
                    {
                        fault = new IpcException(e.Kind, e.Message, ChannelName, e.InnerException);
                        SendErrorFrame(fault);
                        break;
                    }
                    int n = direct.Count > 0
                        ? _stream.Read(direct.Array, direct.Offset, direct.Count)
                        : _stream.Read(buffer, 0, buffer.Length);
                    _bytesReceived += n;
                    if (n == 0)
                    {
                        fault = EndOfStreamFault(parser);
                        break;
                    }
                    frames.Clear();
                    IpcException parseError = null;
                    try
                    {
                        if (direct.Count > 0) parser.Advance(n, frames);
                        else parser.Feed(buffer, 0, n, frames);
                    }
                    catch (IpcException e)
                    {
                        // The frames before the bad one still count. The parser knows no names: add ours.
                        parseError = e.Target != null ? e : new IpcException(e.Kind, e.Message, ChannelName, e.InnerException);
                    }
                    bool stop = Dispatch(frames, messages, ref fault);
                    Deliver(messages);
                    if (parseError != null)
                    {
                        fault = parseError;
                        SendErrorFrame(parseError);
                        break;
                    }
                    if (stop) break;
                }
            }
            catch (OperationCanceledException) { }
            catch (InvalidOperationException) { } // the owner's queue was completed: it closed
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                if (!_localClose)
                {
                    fault = new IpcException(IpcErrorKind.PeerDisconnected,
                        $"The connection to the peer of '{ChannelName}' broke: {e.Message}", ChannelName, e);
                }
            }
            finally
            {
                parser.ReleaseBudget();
                End(_fault ?? fault);
                _readerDone.Set();
            }
        }

        private IpcException EndOfStreamFault(FrameParser parser)
        {
            if (_localClose) return null;
            if (parser.IsMidFrame)
            {
                return new IpcException(IpcErrorKind.PeerDisconnected,
                    $"The peer of '{ChannelName}' disconnected in the middle of a message ({parser.PartialBytes} bytes of it had arrived); the messages before it were delivered.",
                    ChannelName);
            }
            if (PeerHello == null && _bytesReceived == 0)
            {
                return null; // connected and left without a byte: a probe (e.g. New-IpcPipe checking the name), not an error
            }
            if (PeerHello == null)
            {
                return new IpcException(IpcErrorKind.ProtocolError,
                    $"The peer of '{ChannelName}' closed the connection without the PsIpc handshake.", ChannelName);
            }
            return null; // EOF at a frame boundary: the peer is gone, everything it sent arrived
        }

        // Returns true when the peer will send nothing more (goodbye or error).
        private bool Dispatch(List<Frame> frames, List<IpcMessage> messages, ref IpcException fault)
        {
            foreach (Frame frame in frames)
            {
                if (PeerHello == null)
                {
                    if (!AcceptHello(frame, ref fault)) return true;
                    continue;
                }
                switch (frame.Type)
                {
                    case FrameType.Goodbye:
                        return true;
                    case FrameType.Error:
                        fault = ErrorFrame.Decode(frame.Payload, ChannelName);
                        return true;
                    case FrameType.Hello:
                        fault = new IpcException(IpcErrorKind.ProtocolError, $"The peer of '{ChannelName}' sent a second Hello.", ChannelName);
                        SendErrorFrame(fault);
                        return true;
                    default:
                        messages.Add(new IpcMessage((MessageFormat)frame.Type, frame.Payload, SenderView));
                        break;
                }
            }
            return false;
        }

        private bool AcceptHello(Frame frame, ref IpcException fault)
        {
            if (frame.Type == FrameType.Error)
            {
                fault = ErrorFrame.Decode(frame.Payload, ChannelName);
                return false;
            }
            Hello hello = frame.Type == FrameType.Hello ? Hello.TryParse(frame.Payload) : null;
            if (hello == null)
            {
                fault = new IpcException(IpcErrorKind.ProtocolError,
                    $"The peer of '{ChannelName}' does not speak the PsIpc protocol (its first frame is not a Hello).", ChannelName);
                SendErrorFrame(fault);
                return false;
            }
            if (hello.Version != Hello.CurrentVersion)
            {
                fault = new IpcException(IpcErrorKind.ProtocolVersionMismatch,
                    $"The peer of '{ChannelName}' speaks PsIpc protocol version {hello.Version}; this side speaks {Hello.CurrentVersion}.", ChannelName);
                SendErrorFrame(fault);
                return false;
            }
            PeerHello = hello;
            _handshakeTimer?.Dispose();
            IpcException refusal = _owner.OnHello(this);
            if (refusal != null)
            {
                SendErrorFrame(refusal);
                _refused = true;
                return false;
            }
            _helloReceived.Set();
            return true;
        }

        private void Deliver(List<IpcMessage> messages)
        {
            if (messages.Count == 0) return;
            long bytes = 0;
            foreach (IpcMessage m in messages) bytes += m.Size;
            Interlocked.Exchange(ref _lastReceivedTicks, Stopwatch.GetTimestamp());
            int added = _owner.Inbound.TryAddRange(messages, m => m.Size + 64L, Deadline.Infinite, _abort.Token);
            (CountersOf ?? SenderView)?.CountReceived(added, bytes);
            messages.Clear();
        }

        private void SendErrorFrame(IpcException error)
        {
            // A server that accepted the Hello answers with its own first; an error right after must not
            // overtake it (the writer thread sends the Hello, this is the reader thread).
            if (_isServerSide && _helloReceived.IsSet && !_helloSent)
            {
                SpinWait.SpinUntil(() => _helloSent || _writerDone.IsSet, 1000);
            }
            try
            {
                WriteFrameNow(FrameType.Error, ErrorFrame.Encode(error.Kind, error.Message));
            }
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException) { }
        }

        private void OnHandshakeTimeout()
        {
            if (PeerHello != null || _ended) return;
            Abort(new IpcException(IpcErrorKind.HandshakeTimeout,
                $"The peer of '{ChannelName}' did not complete the PsIpc handshake within {_options.HandshakeTimeout.TotalSeconds} s.", ChannelName));
        }

        private void SetFault(IpcException fault)
        {
            if (_fault == null) _fault = fault;
        }

        private void End(IpcException fault)
        {
            if (Interlocked.Exchange(ref _endedOnce, 1) != 0) return;
            bool report = fault != null && !_localClose && !_refused;
            if (report) SetFault(fault);
            _ended = true; // first, so that a writer woken below knows the peer is gone and says nothing more
            _handshakeTimer?.Dispose();
            // The peer is done: stop the writer (what it still holds can no longer be delivered).
            _outbound.CompleteAndClear();
            try { _abort.Cancel(); } catch (ObjectDisposedException) { }
            _owner.OnEnded(this, report ? fault : null);
            ShutdownStream();
        }

        private void ShutdownStream()
        {
            try { _stream.Dispose(); } catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException) { }
        }
    }
}
