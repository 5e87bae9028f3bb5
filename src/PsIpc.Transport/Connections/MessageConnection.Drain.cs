using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Connections
{
    // The write turn and the drain. One writer at a time holds the turn: an inline write, a control frame (hello,
    // error) or the drain. The drain is no thread of its own: it is started on the thread pool when a frame is
    // queued and nobody writes, empties the queue one buffer per write and gives the turn back when the queue is
    // empty (a writer that gives the turn back while frames wait starts it). A connection that reads on the thread
    // pool also writes asynchronously, so 10,000 connections hold no thread while their peers do not read; one with a
    // reader thread (a client; a server's first connections) writes blocking, as its writer thread used to.
    internal sealed partial class MessageConnection
    {
        private static readonly int s_processId = Process.GetCurrentProcess().Id;
        private static readonly WaitCallback s_drain = state => _ = ((MessageConnection)state!).DrainAsync();

        private readonly object _writeLock = new object(); // guards the three fields below; never held during I/O
        private readonly ManualResetEventSlim _writerDone = new ManualResetEventSlim(false); // nothing more will be written
        private bool _writeBusy;     // the turn is held
        private bool _drainQueued;   // a drain was queued to the thread pool and has not started yet
        private bool _writingOver;   // the goodbye was written, or writing failed: the turn is never given back
        private int _writeTurnThread; // the managed thread id of a synchronous holder of the turn (see ShutdownStream)
        private List<OutgoingFrame>? _drainBatch;

        private bool TryTakeWriteTurn()
        {
            lock (_writeLock)
            {
                if (_writeBusy) return false;
                _writeBusy = true;
                _writeTurnThread = Environment.CurrentManagedThreadId;
                return true;
            }
        }

        // For control frames and ShutdownStream (which disposes the stream between writes, never under one): waits for
        // the turn at most until the deadline (a drain blocked on a peer that does not read holds it; ShutdownStream has
        // shut its socket down, so it fails at once). False at the deadline, when writing is over (the turn is never
        // given back) or when this thread holds the turn itself (a writer whose failure ends the connection).
        private bool TakeWriteTurn(Deadline deadline)
        {
            lock (_writeLock)
            {
                while (_writeBusy)
                {
                    if (_writingOver || _writeTurnThread == Environment.CurrentManagedThreadId) return false;
                    int ms = deadline.RemainingMilliseconds;
                    if (ms == 0) return false;
                    Monitor.Wait(_writeLock, ms);
                }
                _writeBusy = true;
                _writeTurnThread = Environment.CurrentManagedThreadId;
                return true;
            }
        }

        // Gives the turn back; frames queued meanwhile (or a completed queue: the goodbye) go to a drain.
        private void ReleaseWriteTurn()
        {
            lock (_writeLock)
            {
                _writeBusy = false;
                _writeTurnThread = 0;
                Monitor.PulseAll(_writeLock);
                if (!HasWorkForDrain()) return;
                _drainQueued = true;
            }
            ThreadPool.UnsafeQueueUserWorkItem(s_drain, this);
        }

        // After a frame was queued or the queue completed: starts a drain unless a writer holds the turn (it starts
        // one as it gives the turn back) or one is queued already.
        private void EnsureDrain()
        {
            lock (_writeLock)
            {
                if (_writeBusy || !HasWorkForDrain()) return;
                _drainQueued = true;
            }
            ThreadPool.UnsafeQueueUserWorkItem(s_drain, this);
        }

        // Under _writeLock.
        private bool HasWorkForDrain() =>
            !_drainQueued && !_writingOver && _helloSent && (_outbound.Count > 0 || _outbound.IsCompleted);

        // Never throws: it runs on the thread pool, where an exception would end the process.
        private async Task DrainAsync()
        {
            if (_outbound.Count < 64 && !_outbound.IsCompleted) LetBatchGrow(_outbound.Count); // before the turn: a flush may still take it
            lock (_writeLock)
            {
                _drainQueued = false;
                if (_writeBusy) return; // a flush took the turn meanwhile: it starts a drain again if frames are left
                _writeBusy = true;
            }
            byte[]? buffer = null;
            List<OutgoingFrame> batch = _drainBatch ??= new List<OutgoingFrame>(16);
            try
            {
                while (true)
                {
                    batch.Clear();
                    int n;
                    lock (_writeLock)
                    {
                        n = _outbound.TakeBatch(batch, MaxBatch, Deadline.After(TimeSpan.Zero), CancellationToken.None);
                        if (n == 0)
                        {
                            // Empty: give the turn back under the lock that Enqueue's EnsureDrain takes, so a frame queued
                            // after this look is seen there.
                            _writeBusy = false;
                            Monitor.PulseAll(_writeLock);
                            return;
                        }
                    }
                    if (n < 0)
                    {
                        await FinishWritingAsync().ConfigureAwait(false);
                        return;
                    }
                    buffer ??= BufferPool.Rent();
                    if (_readsOnPool) await WriteBatchAsync(batch, buffer).ConfigureAwait(false);
                    else WriteBatch(batch, buffer);
                    Interlocked.Add(ref _framesWritten, n);
                    PulseFlushWaiters();
                    if (_outbound.Count > 0 && _outbound.Count < 64) LetBatchGrow(_outbound.Count);
                }
            }
            // InvalidOperationException: a NetworkStream whose socket can no longer write ("does not support writing").
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException || e is InvalidOperationException ||
                e is OperationCanceledException)
            {
                batch.Clear(); // the turn is still ours (StopWriting keeps it): nobody else uses the list
                StopWriting(e);
            }
            catch (Exception e)
            {
                batch.Clear();
                StopWriting(e); // anything else ends this connection, never the process
            }
            finally
            {
                // Not batch.Clear() here: on the way out of an empty queue the turn was given back already, and the next
                // drain (same list) may be writing it: clearing it then threw "Collection was modified" in that drain's
                // enumeration, which ended the connection (found by Bench row 8's Unix socket sender).
                if (buffer != null) BufferPool.Return(buffer);
                PulseFlushWaiters();
            }
        }

        // The queue was completed (Close) and everything in it written: the goodbye, then the end of our sending side.
        private async Task FinishWritingAsync()
        {
            try
            {
                if (IsEnded) return; // the peer left first: nobody to say goodbye to
                if (_framing.HasHandshake)
                {
                    byte[] goodbye = FrameHeader.Frame(FrameType.Goodbye, Array.Empty<byte>());
                    if (_readsOnPool) await _stream.WriteAsync(goodbye, 0, goodbye.Length, _abort.Token).ConfigureAwait(false);
                    else _stream.Write(goodbye, 0, goodbye.Length);
                }
                try { _socket?.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
            }
            finally
            {
                MarkWritingOver(); // the turn stays taken: nothing more is written
                _writerDone.Set();
            }
        }

        private void MarkWritingOver()
        {
            lock (_writeLock)
            {
                _writingOver = true;
                Monitor.PulseAll(_writeLock); // a control frame waiting for the turn gives up now
            }
        }

        private void StopWriting(Exception e)
        {
            MarkWritingOver();
            if (!IsEnded && !(e is OperationCanceledException))
            {
                TrySetReason(ShutdownReason.Faulted, new IpcException(IpcErrorKind.PeerDisconnected,
                    $"Writing to the peer of '{ChannelName}' failed: the peer has gone ({e.Message}).", ChannelName, e));
            }
            _outbound.CompleteAndClear();
            ShutdownStream();
            _writerDone.Set();
            // A half-closed peer's reader is gone already: this end is the last to know.
            if (Volatile.Read(ref _phase) == (int)Phase.HalfClosed) End(Fault);
        }

        private async Task WriteBatchAsync(List<OutgoingFrame> batch, byte[] buffer)
        {
            CancellationToken token = _abort.Token;
            int used = 0;
            foreach (OutgoingFrame frame in batch)
            {
                if (used + _framing.EncodedSize(frame) <= buffer.Length)
                {
                    used += Encode(frame, buffer, used);
                    continue;
                }
                // Too big for what is left: send the buffer and the prefix, then the payload as it is (as WriteBatch).
                int prefix = _framing.PrefixSize(frame);
                if (used + prefix > buffer.Length)
                {
                    await _stream.WriteAsync(buffer, 0, used, token).ConfigureAwait(false);
                    used = 0;
                }
                _framing.WritePrefix(buffer, used, frame);
                used += prefix;
                await _stream.WriteAsync(buffer, 0, used, token).ConfigureAwait(false);
                await _stream.WriteAsync(frame.Payload, 0, frame.Payload.Length, token).ConfigureAwait(false);
                _framing.WriteSuffix(buffer, 0, frame);
                used = _framing.SuffixSize(frame);
            }
            if (used > 0) await _stream.WriteAsync(buffer, 0, used, token).ConfigureAwait(false);
            await _stream.FlushAsync(token).ConfigureAwait(false);
        }

        // Our hello, the first bytes this end writes: a client's at its start, a server's once it accepted the client's.
        // Nobody holds the turn before it (inline writes and drains wait for _helloSent). A failure ends the connection
        // (the reader then finds the stream closed).
        private void SendHello()
        {
            bool taken = TryTakeWriteTurn();
            Debug.Assert(taken, "nothing writes before the hello");
            try
            {
                WriteControlFrame(FrameType.Hello, new Hello(Hello.CurrentVersion, s_processId, _options.MaxMessageSize, Hello.CorrelationFlag).ToPayload());
                _helloSent = true;
            }
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException || e is InvalidOperationException)
            {
                MarkWritingOver();
                if (!IsEnded)
                {
                    TrySetReason(ShutdownReason.Faulted, new IpcException(IpcErrorKind.PeerDisconnected,
                        $"Writing to the peer of '{ChannelName}' failed: the peer has gone ({e.Message}).", ChannelName, e));
                }
                ShutdownStream();
                _writerDone.Set();
            }
            finally
            {
                ReleaseWriteTurn();
            }
        }
    }
}
