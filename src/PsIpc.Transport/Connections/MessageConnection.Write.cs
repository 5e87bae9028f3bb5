using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Connections
{
    // The send path: the inline path (a small frame written on the caller's thread), and a queue that the drain
    // (.Drain.cs) empties on the thread pool, one buffer per write. One writer at a time holds the write turn.
    internal sealed partial class MessageConnection
    {
        private const int MaxBatch = 4096;

        // A frame this small, sent when the connection has been idle this long (a Request or Reply frame: at any
        // time), is written on the caller's thread: a request/reply loop then pays no thread hand-off. Streams of
        // messages still go through the drain, which batches them.
        private const int InlineMaxFrame = 4096;

        // A frame written inline on a Unix stream socket goes with one non-blocking send instead of poll() then send():
        // such a socket takes a write that fits in one of its buffers (1 MiB here, see SocketBuffers) whole or not at all.
        // TCP may take part of a write, so it keeps the poll.
        private readonly bool _sendsWithoutPoll;
        private static readonly long InlineIdleTicks = Stopwatch.Frequency / 50000; // 20 us

        // Inline writes encode on the caller's thread and never wait in between: one buffer per thread, not per
        // connection (4 KiB each would be 40 MiB for 10,000 connections).
        [ThreadStatic]
        private static byte[]? s_inlineBuffer;

        private readonly BoundedQueue<OutgoingFrame> _outbound;
        private readonly object _flushGate = new object();
        private long _framesQueued, _framesWritten;
        private long _lastEnqueueTicks;
        private int _flushWaiters;
        private volatile bool _helloSent; // nothing may be written inline before our hello

        private static byte[] InlineBuffer => s_inlineBuffer ??= new byte[InlineMaxFrame];

        public void Enqueue(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
            ThrowIfUnusable();
            if (frame.Payload.Length > PeerMaxMessageSize)
            {
                throw new IpcException(IpcErrorKind.MessageTooLarge,
                    $"The message is {frame.Payload.Length} bytes; the peer of '{ChannelName}' accepts at most {PeerMaxMessageSize}.", ChannelName);
            }
            if (TryWriteInline(frame)) return;
            bool added;
            try
            {
                added = _outbound.TryAdd(frame, _framing.EncodedSize(frame), deadline, cancellationToken);
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
            EnsureDrain();
        }

        /// <summary>Waits until everything queued so far was written to the stream.</summary>
        public void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            long target = Interlocked.Read(ref _framesQueued);
            if (Interlocked.Read(ref _framesWritten) >= target) return;
            // A little left that the drain has not taken yet (a single Send-IpcMessage, the last few of a
            // stream): write it here rather than wait for the drain's thread-pool thread to start.
            if (TryFlushInline() && Interlocked.Read(ref _framesWritten) >= target) return;
            // Woken by the drain after each batch, by the end of the connection, and by cancellation.
            Interlocked.Increment(ref _flushWaiters); // the drain does not wait for a bigger batch meanwhile
            try
            {
                lock (_flushGate)
                {
                    while (Interlocked.Read(ref _framesWritten) < target)
                    {
                        ThrowIfUnusable();
                        if (!GateWait.Wait(_flushGate, deadline, cancellationToken))
                        {
                            throw new IpcException(IpcErrorKind.FlushTimeout,
                                $"Timed out while {target - Interlocked.Read(ref _framesWritten)} message(s) still waited to be written to '{ChannelName}'.", ChannelName);
                        }
                    }
                }
            }
            finally
            {
                Interlocked.Decrement(ref _flushWaiters);
            }
        }

        // Writes what is queued on the caller's thread when it is small, nobody else is writing and the socket
        // takes it without blocking (so a flush never hangs in write() past its deadline). True when it wrote.
        private bool TryFlushInline()
        {
            if (_socket == null || !_helloSent || _outbound.Bytes > InlineMaxFrame || !TryTakeWriteTurn()) return false;
            try
            {
                if (IsEnded || _outbound.Count == 0 || !_socket.Poll(0, SelectMode.SelectWrite)) return false;
                var batch = new List<OutgoingFrame>(8);
                int n = _outbound.TakeBatch(batch, MaxBatch, Deadline.After(TimeSpan.Zero), CancellationToken.None);
                if (n <= 0) return false;
                WriteBatch(batch, InlineBuffer); // usually one write; frames that do not fit are written as WriteBatch does
                Interlocked.Add(ref _framesWritten, n);
                return true;
            }
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException || e is InvalidOperationException)
            {
                return false; // the drain (or the reader) reports a broken connection; the flush waits for it as before
            }
            finally
            {
                ReleaseWriteTurn();
            }
        }

        private void PulseFlushWaiters()
        {
            lock (_flushGate) Monitor.PulseAll(_flushGate);
        }

        private void ThrowIfUnusable()
        {
            IpcException? fault = Fault;
            if (fault != null)
            {
                throw new IpcException(fault.Kind == IpcErrorKind.ChannelClosed ? IpcErrorKind.ChannelClosed : IpcErrorKind.PeerDisconnected,
                    $"'{ChannelName}' can no longer send: {fault.Message}", ChannelName, fault);
            }
            if (IsEnded || _outbound.IsCompleted)
            {
                throw new IpcException(IpcErrorKind.PeerDisconnected,
                    $"The peer of '{ChannelName}' has closed the connection.", ChannelName);
            }
        }

        private bool TryWriteInline(OutgoingFrame frame)
        {
            long now = Stopwatch.GetTimestamp();
            long last = _lastEnqueueTicks;
            _lastEnqueueTicks = now;
            if (_socket == null || !_connected.DirectSocketWrites || !_helloSent) return false;
            // A request or its reply is written inline however soon it follows the last frame: its peer waits for it,
            // and a fast request loop (trips under 20 us) would otherwise pay a thread-pool hop per frame.
            if (now - last < InlineIdleTicks && !frame.IsCorrelated) return false;
            int size = _framing.EncodedSize(frame);
            if (size > InlineMaxFrame) return false;
            if (!TryTakeWriteTurn()) return false;
            try
            {
                // Holding the turn, an empty queue means nothing is in flight: this frame cannot overtake another.
                if (_outbound.Count != 0 || IsEnded) return false;
                if (!_sendsWithoutPoll && !_socket.Poll(0, SelectMode.SelectWrite)) return false; // never block the caller in write()
                byte[] buffer = InlineBuffer;
                int used = Encode(frame, buffer, 0);
                if (_sendsWithoutPoll)
                {
                    // One send that fails rather than waits (EAGAIN: the queue takes it); a frame this small goes whole or not at all.
                    int sent = NonBlockingSocket.TrySend(_socket, buffer, 0, used);
                    if (sent < 0) return false;
                    if (sent < used) _socket.Send(buffer, sent, used - sent, SocketFlags.None); // never seen: see _sendsWithoutPoll
                }
                else
                {
                    _socket.Send(buffer, 0, used, SocketFlags.None);
                }
                Interlocked.Increment(ref _framesQueued);
                Interlocked.Increment(ref _framesWritten);
                return true;
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                var fault = new IpcException(IpcErrorKind.PeerDisconnected,
                    $"Writing to the peer of '{ChannelName}' failed: the peer has gone ({e.Message}).", ChannelName, e);
                TrySetReason(ShutdownReason.Faulted, fault);
                if (Volatile.Read(ref _phase) == (int)Phase.HalfClosed) End(Fault); // its reader is gone already
                throw new IpcException(IpcErrorKind.PeerDisconnected, fault.Message, ChannelName, e);
            }
            finally
            {
                ReleaseWriteTurn();
            }
        }

        // A few small messages here mean a stream has started (sporadic messages are written inline), so
        // give the producer a few microseconds to queue more: one write for many messages beats one wake-up
        // and write each. Pure spinning, bounded: SpinWait.SpinOnce would escalate to Sleep(1), a millisecond
        // per batch, which is what large messages would then pay.
        private void LetBatchGrow(int queued)
        {
            // Nothing more will come while someone waits for this batch to be written (Send-IpcMessage's flush).
            if (queued >= 64 || Volatile.Read(ref _flushWaiters) > 0 || _outbound.Bytes >= 16 * 1024) return;
            for (int i = 0; i < 16 && _outbound.Count < 64; i++) Thread.SpinWait(30);
        }

        private int Encode(in OutgoingFrame frame, byte[] buffer, int offset)
        {
            int start = offset;
            _framing.WritePrefix(buffer, offset, frame);
            offset += _framing.PrefixSize(frame);
            Buffer.BlockCopy(frame.Payload, 0, buffer, offset, frame.Payload.Length);
            offset += frame.Payload.Length;
            _framing.WriteSuffix(buffer, offset, frame);
            return offset + _framing.SuffixSize(frame) - start;
        }

        private void WriteBatch(List<OutgoingFrame> batch, byte[] buffer)
        {
            int used = 0;
            foreach (OutgoingFrame frame in batch)
            {
                if (used + _framing.EncodedSize(frame) <= buffer.Length)
                {
                    used += Encode(frame, buffer, used);
                    continue;
                }
                // Too big for what is left: send the buffer and the prefix, then the payload as it is.
                int prefix = _framing.PrefixSize(frame);
                if (used + prefix > buffer.Length)
                {
                    _stream.Write(buffer, 0, used);
                    used = 0;
                }
                _framing.WritePrefix(buffer, used, frame);
                used += prefix;
                if (used > 0) _stream.Write(buffer, 0, used);
                used = 0;
                _stream.Write(frame.Payload, 0, frame.Payload.Length);
                _framing.WriteSuffix(buffer, 0, frame);
                used = _framing.SuffixSize(frame);
            }
            if (used > 0) _stream.Write(buffer, 0, used);
            _stream.Flush();
        }

        // Call holding the write turn.
        private void WriteControlFrame(FrameType type, byte[] payload)
        {
            byte[] frame = FrameHeader.Frame(type, payload);
            _stream.Write(frame, 0, frame.Length);
            _stream.Flush();
        }
    }
}
