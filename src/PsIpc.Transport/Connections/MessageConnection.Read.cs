using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Connections
{
    // The receive path: the reader thread (or the thread pool's read loop, .ReadAsync.cs) cuts frames with the
    // framing's reader and hands batches of messages to the owner's bounded queue; when that is full it stops
    // reading, and the peer's writes block: back-pressure.
    internal sealed partial class MessageConnection
    {
        private long _bytesReceived;
        private IFrameReader? _frameReader;   // the stream's parser state: used by whoever holds the read turn
        private byte[]? _readBuffer;
        private readonly List<Frame> _frames = new List<Frame>(); // grow with the batches: 10,000 idle connections hold little
        private readonly List<IpcMessage> _messages = new List<IpcMessage>();
        private long _lastReceivedTicks = Stopwatch.GetTimestamp(); // the start counts as activity
        private long _writtenAtLastMessage = -1; // frames written when the peer's last plain message came (server)

        private void ReadLoop()
        {
            int max = Math.Max(1, _options.MaxMessageSize);
            _readBuffer = new byte[_framing.Kind == Sockets.SocketFraming.Raw ? Math.Min(BufferSize, max) : BufferSize];
            _frameReader = _framing.CreateReader(_options);
            // Bytes waiting in the socket count as arrived: a large payload's array is then allocated once, at once.
            if (_frameReader is FrameParser parser)
            {
                if (_connected.DirectSocketWrites) parser.PendingBytes = SocketPendingBytes;
                parser.PeerIsTrusted = _connected.Identity.IsAuthenticated;
            }
            IpcException? fault = null;
            bool halfClosed = false;
            try
            {
                while (true)
                {
                    // Between reads, where nobody else can be reading yet: from here on a receiver may read too.
                    if (_peerRequested && !_receiverReads) _receiverReads = true;
                    if (CallerReads)
                    {
                        // A requester may read the socket itself (see .CallerRead.cs): read only holding the turn.
                        ReadEnd? ended = TakeReaderTurn();
                        if (ended != null)
                        {
                            fault = ended.Fault;
                            break;
                        }
                        bool stop;
                        try
                        {
                            stop = ReadOnce(ref fault, ref halfClosed);
                        }
                        finally
                        {
                            ReleaseReadTurn(byCaller: false);
                        }
                        if (stop) break;
                        continue;
                    }
                    if (ReadOnce(ref fault, ref halfClosed)) break;
                }
            }
            catch (OperationCanceledException) { }
            // The owner's queue was completed (it closed); or the stream was disposed during a read (NetworkStream.Read's
            // "does not support reading", the read side of the race ShutdownStream describes): the end was decided already.
            catch (InvalidOperationException) { }
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                fault = ReadFailure(e);
            }
            finally
            {
                _frameReader.ReleaseBudget();
                if (!halfClosed)
                {
                    if (fault == null && Reason == ShutdownReason.None) TrySetReason(ShutdownReason.PeerLeft, null);
                    End(fault);
                }
                _readerDone.Set();
                // A close or abort that came while the reader was leaving saw it still running and left the end
                // to it: report it now (End runs once).
                if (halfClosed && Reason != ShutdownReason.None) End(Fault);
            }
        }

        // A broken read: the peer vanished (unless this end closed the stream itself).
        private IpcException? ReadFailure(Exception e) => ClosedHere ? null
            : new IpcException(IpcErrorKind.PeerDisconnected, $"The connection to the peer of '{ChannelName}' broke: {e.Message}", ChannelName, e);

        // One read and what it completes: frames cut, dispatched, their messages delivered. True when the peer will
        // send nothing more (end of stream, goodbye, error) or the stream is unusable; fault says why, if it failed.
        // Run by the reader thread, or by a requester that holds the read turn.
        private bool ReadOnce(ref IpcException? fault, ref bool halfClosed)
        {
            IFrameReader reader = _frameReader!;
            byte[] buffer = _readBuffer!;
            // Inside a large payload, read straight into it: one copy less, and far fewer reads.
            ArraySegment<byte> direct;
            try
            {
                direct = reader.DirectTarget(BufferSize); // grows the payload: may not fit the budget
            }
            catch (IpcException e)
            {
                fault = Named(e);
                SendErrorFrame(fault);
                return true;
            }
            int n = direct.Count > 0
                ? _stream.Read(direct.Array!, direct.Offset, direct.Count)
                : _stream.Read(buffer, 0, buffer.Length);
            return FinishRead(n, direct.Count > 0, buffer, ref fault, ref halfClosed);
        }

        // What ReadOnce does with the n bytes one read brought (into the payload being filled, or into buffer).
        private bool FinishRead(int n, bool intoDirect, byte[] buffer, ref IpcException? fault, ref bool halfClosed)
        {
            bool stop = ConsumeRead(n, intoDirect, buffer, ref fault, ref halfClosed, out IpcException? tellPeer);
            Deliver(_messages);
            if (tellPeer != null) SendErrorFrame(tellPeer);
            return stop;
        }

        // What one read completed: frames cut and dispatched into _messages, not yet delivered. True when the peer will send
        // nothing more (end of stream, goodbye, error) or the stream is unusable; fault says why, if it failed; tellPeer is
        // an error to send the peer once the messages before it were delivered. Shared by both read loops.
        private bool ConsumeRead(int n, bool intoDirect, byte[]? buffer, ref IpcException? fault, ref bool halfClosed, out IpcException? tellPeer)
        {
            IFrameReader reader = _frameReader!;
            List<Frame> frames = _frames;
            List<IpcMessage> messages = _messages;
            tellPeer = null;
            _bytesReceived += n;
            frames.Clear();
            if (n == 0)
            {
                reader.Finish(frames);
                Dispatch(frames, messages, ref fault);
                fault ??= EndOfStreamFault(reader);
                halfClosed = fault == null && !_framing.HasHandshake && _owner.KeepsHalfClosed && !ClosedHere && SenderView != null;
                if (halfClosed)
                {
                    messages.Add(IpcMessage.ForEndOfInput(SenderView!));
                    Interlocked.CompareExchange(ref _phase, (int)Phase.HalfClosed, (int)Phase.Open);
                }
                return true;
            }
            IpcException? parseError = null;
            try
            {
                if (intoDirect) reader.Advance(n, frames);
                else reader.Feed(buffer!, 0, n, frames);
            }
            catch (IpcException e)
            {
                parseError = Named(e); // the frames before the bad one still count
            }
            bool stop = Dispatch(frames, messages, ref fault);
            if (parseError != null)
            {
                fault = parseError;
                tellPeer = parseError;
                return true;
            }
            return stop;
        }

        private int SocketPendingBytes()
        {
            try
            {
                return _socket!.Available;
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                return 0;
            }
        }

        // The framing's readers know no channel names: add ours.
        private IpcException Named(IpcException e) =>
            e.Target != null ? e : new IpcException(e.Kind, e.Message, ChannelName, e.InnerException);

        private IpcException? EndOfStreamFault(IFrameReader reader)
        {
            if (ClosedHere) return null;
            if (reader.IsMidFrame)
            {
                return new IpcException(IpcErrorKind.PeerDisconnected,
                    $"The peer of '{ChannelName}' disconnected in the middle of a message ({reader.PartialBytes} bytes of it had arrived); the messages before it were delivered.",
                    ChannelName);
            }
            if (!_framing.HasHandshake || PeerHello != null) return null; // at a message boundary: everything it sent arrived
            if (_bytesReceived == 0)
            {
                return null; // connected and left without a byte: a probe (e.g. New-IpcPipe checking the name), not an error
            }
            return new IpcException(IpcErrorKind.ProtocolError,
                $"The peer of '{ChannelName}' closed the connection without the PsIpc handshake.", ChannelName);
        }

        // Returns true when the peer will send nothing more (goodbye or error).
        private bool Dispatch(List<Frame> frames, List<IpcMessage> messages, ref IpcException? fault)
        {
            for (int i = 0; i < frames.Count; i++)
            {
                if (DispatchOne(frames[i], messages, ref fault))
                {
                    // Frames that came in the same read after the last word are dropped: so is their share of the
                    // server's receive budget, which nothing else would ever give back.
                    for (int j = i + 1; j < frames.Count; j++) _options.ReceiveBudget?.Release(frames[j].BudgetHeld);
                    return true;
                }
            }
            return false;
        }

        private bool DispatchOne(Frame frame, List<IpcMessage> messages, ref IpcException? fault)
        {
            if (!_framing.HasHandshake)
            {
                messages.Add(new IpcMessage((MessageFormat)frame.Type, frame.Payload, SenderView!) { BudgetHeld = frame.BudgetHeld });
                return false;
            }
            if (!FrameTypes.CarriesMessage(frame.Type)) _options.ReceiveBudget?.Release(frame.BudgetHeld);
            if (PeerHello == null) return !AcceptHello(frame, ref fault);
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
                case FrameType.Request:
                case FrameType.Reply:
                    IpcMessage? message;
                    try
                    {
                        message = DispatchCorrelated(frame);
                    }
                    catch (IpcException e)
                    {
                        _options.ReceiveBudget?.Release(frame.BudgetHeld);
                        fault = e;
                        SendErrorFrame(e);
                        return true;
                    }
                    if (message != null) messages.Add(message);
                    return false;
                default:
                    if (_isServerSide && !_peerRequested) NoteAnswersBetween();
                    messages.Add(new IpcMessage((MessageFormat)frame.Type, frame.Payload, SenderView!) { BudgetHeld = frame.BudgetHeld });
                    return false;
            }
        }

        // A plain message that comes after this end wrote something since the previous one: the peer waits for answers
        // (a Send/Receive loop, a client without correlation ids), so a receiver may read it as for Request frames.
        private void NoteAnswersBetween()
        {
            long written = Interlocked.Read(ref _framesWritten);
            if (_writtenAtLastMessage >= 0 && written > _writtenAtLastMessage) _peerRequested = true;
            _writtenAtLastMessage = written;
        }

        private bool AcceptHello(Frame frame, ref IpcException? fault)
        {
            if (frame.Type == FrameType.Error)
            {
                fault = ErrorFrame.Decode(frame.Payload, ChannelName);
                return false;
            }
            Hello? hello = frame.Type == FrameType.Hello ? Hello.TryParse(frame.Payload) : null;
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
            IpcException? refusal = _owner.OnOpened(this);
            if (refusal != null)
            {
                SendErrorFrame(refusal);
                TrySetReason(ShutdownReason.Refused, null);
                return false;
            }
            Interlocked.CompareExchange(ref _phase, (int)Phase.Open, (int)Phase.Opening);
            _opened.Set();
            if (_isServerSide) SendHello(); // before anything read after the client's hello is answered
            return true;
        }

        private void Deliver(List<IpcMessage> messages)
        {
            if (messages.Count == 0) return;
            long bytes = 0;
            int markers = 0;
            foreach (IpcMessage m in messages)
            {
                bytes += m.Size;
                if (m.IsEndOfInput) markers++;
            }
            Interlocked.Exchange(ref _lastReceivedTicks, Stopwatch.GetTimestamp());
            // Aborted while it waits for room: the messages that did not go in give their budget share back.
            int added = _owner.Inbound.TryAddRange(messages, m => m.Size + 64L, _giveShareBack ??= GiveShareBack, Deadline.Infinite, _abort.Token);
            (CountersOf ?? SenderView)?.CountReceived(added - markers, bytes);
            messages.Clear();
        }

        private Action<IpcMessage>? _giveShareBack;

        private void GiveShareBack(IpcMessage message)
        {
            _options.ReceiveBudget?.Release(message.BudgetHeld);
            message.BudgetHeld = 0;
        }

        private void SendErrorFrame(IpcException error)
        {
            if (!_framing.HasHandshake) return; // Line and Raw have no way to say why: the peer sees the end of the stream
            // A server that accepted the hello answered with its own first (AcceptHello, on this read path); if that
            // failed, the connection is broken and nothing more can be said.
            if (_isServerSide && _opened.IsSet && !_helloSent) return;
            // The turn may be held by a drain whose peer does not read: wait a moment, then let the end speak for itself.
            // Nor block in write(): the read loop may be a thread-pool thread.
            if (!TakeWriteTurn(Deadline.After(TimeSpan.FromSeconds(1)))) return;
            try
            {
                if (_socket == null || _socket.Poll(0, SelectMode.SelectWrite))
                {
                    WriteControlFrame(FrameType.Error, ErrorFrame.Encode(error.Kind, error.Message));
                }
            }
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException || e is InvalidOperationException) { }
            finally
            {
                ReleaseWriteTurn();
            }
        }
    }
}
