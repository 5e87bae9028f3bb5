using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Sockets;

namespace PsIpc.Transport.Connections
{
    // The read loop of a connection without a reader thread (ReadsOnThreadPool): the same steps as ReadLoop/ReadOnce,
    // awaited. It waits for bytes with a zero-byte read, so an idle connection holds no buffer; then it reads into a
    // pooled 64 KiB buffer (or straight into a large payload), cuts and dispatches frames (ConsumeRead, shared with the
    // thread's loop) and hands the messages to the owner's queue, awaiting room when it is full (back-pressure without a
    // blocked thread). Continuations run on the thread pool.
    internal sealed partial class MessageConnection
    {
        private TaskCompletionSource<bool>? _aborted; // completes when _abort is cancelled: ends a wait for room

        // Never throws: nobody awaits it, and the connection must end whatever happens.
        private async Task ReadLoopAsync()
        {
            int readSize = _framing.Kind == SocketFraming.Raw ? Math.Min(BufferSize, Math.Max(1, _options.MaxMessageSize)) : BufferSize;
            IpcException? fault = null;
            bool halfClosed = false;
            try
            {
                _frameReader = _framing.CreateReader(_options);
                CancellationToken token = _abort.Token;
                while (true)
                {
                    ArraySegment<byte> direct;
                    try
                    {
                        direct = _frameReader.DirectTarget(BufferSize); // grows the payload: may not fit the budget
                    }
                    catch (IpcException e)
                    {
                        fault = Named(e);
                        SendErrorFrame(fault);
                        break;
                    }
                    bool stop;
                    IpcException? tellPeer;
                    if (direct.Count > 0)
                    {
                        int n = await _stream.ReadAsync(direct.Array!, direct.Offset, direct.Count, token).ConfigureAwait(false);
                        stop = ConsumeRead(n, true, null, ref fault, ref halfClosed, out tellPeer);
                    }
                    else
                    {
                        // Wait for bytes without a buffer (a stream that cannot wait so returns at once: the read below waits).
                        await _stream.ReadAsync(Array.Empty<byte>(), 0, 0, token).ConfigureAwait(false);
                        byte[] buffer = BufferPool.Rent();
                        try
                        {
                            int n = await _stream.ReadAsync(buffer, 0, readSize, token).ConfigureAwait(false);
                            stop = ConsumeRead(n, false, buffer, ref fault, ref halfClosed, out tellPeer);
                        }
                        finally
                        {
                            BufferPool.Return(buffer); // the framing's readers copy what they keep
                        }
                    }
                    if (_messages.Count > 0) await DeliverAsync(_messages).ConfigureAwait(false);
                    if (tellPeer != null) SendErrorFrame(tellPeer);
                    if (stop) break;
                }
            }
            catch (OperationCanceledException) { }
            catch (InvalidOperationException) { } // the owner's queue was completed: it closed
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                fault = ReadFailure(e);
            }
            catch (Exception e)
            {
                // Anything else ends this connection, never the process (nor leaves it open with nobody reading).
                fault = ClosedHere ? null : new IpcException(IpcErrorKind.PeerDisconnected,
                    $"Reading from the peer of '{ChannelName}' failed: {e.Message}", ChannelName, e);
            }
            finally
            {
                _frameReader?.ReleaseBudget();
                if (!halfClosed)
                {
                    if (fault == null && Reason == ShutdownReason.None) TrySetReason(ShutdownReason.PeerLeft, null);
                    End(fault);
                }
                _readerDone.Set();
                // A close or abort that came while the loop was leaving saw it still running and left the end to it.
                if (halfClosed && Reason != ShutdownReason.None) End(Fault);
            }
        }

        // Deliver, without blocking a thread when the owner's queue is full.
        private async Task DeliverAsync(List<IpcMessage> messages)
        {
            long bytes = 0;
            int markers = 0;
            foreach (IpcMessage m in messages)
            {
                bytes += m.Size;
                if (m.IsEndOfInput) markers++;
            }
            Interlocked.Exchange(ref _lastReceivedTicks, Stopwatch.GetTimestamp());
            BoundedQueue<IpcMessage> inbound = _owner.Inbound;
            Func<IpcMessage, long> sizeOf = s_messageSize;
            int added = 0;
            try
            {
                while (true)
                {
                    added = inbound.AddWhileRoom(messages, added, sizeOf, out Task? room);
                    if (room == null) break;
                    if (await Task.WhenAny(room, Aborted).ConfigureAwait(false) != room) throw new OperationCanceledException(_abort.Token);
                }
            }
            catch
            {
                // Aborted while it waited for room, or the queue was completed: the messages that did not go in give
                // their budget share back.
                for (int i = added; i < messages.Count; i++) GiveShareBack(messages[i]);
                throw;
            }
            (CountersOf ?? SenderView)?.CountReceived(added - markers, bytes);
            messages.Clear();
        }

        private static readonly Func<IpcMessage, long> s_messageSize = m => m.Size + 64L;

        private Task Aborted
        {
            get
            {
                if (_aborted == null)
                {
                    var aborted = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                    if (Interlocked.CompareExchange(ref _aborted, aborted, null) == null)
                    {
                        _abort.Token.Register(state => ((TaskCompletionSource<bool>)state!).TrySetResult(true), aborted);
                    }
                }
                return _aborted!.Task;
            }
        }
    }
}
