using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// A Line or Raw connection, for programs that know nothing of PsIpc: no handshake, no frames.
    /// Line: every "\n"-terminated line (a trailing "\r" removed) is one Text message, and a message sent
    /// is written as UTF-8 text followed by "\n" (unless it ends with one). Raw: whatever one read returns
    /// is one Bytes message, and a message sent is written exactly as it is.
    /// One reader thread cuts messages; sends are written at once on the caller's thread, under a lock, with
    /// the send deadline as the socket's send timeout: a peer that does not read makes Send time out.
    /// </summary>
    internal sealed class PlainSocketConnection : ISocketConnection
    {
        private const int ReadBufferSize = 64 * 1024;
        private static readonly byte[] NewLine = { (byte)'\n' };
        private static int s_nextId;

        private readonly ISocketConnectionOwner _owner;
        private readonly ChannelOptions _options;
        private readonly SocketFraming _framing;
        private readonly Stream _stream;
        private readonly HttpSniffStream _sniff;
        private readonly string _channelName;
        private readonly object _writeLock = new object();
        private readonly ManualResetEventSlim _readerDone = new ManualResetEventSlim(false);
        private readonly CancellationTokenSource _abort = new CancellationTokenSource();
        private Thread _reader;
        private volatile IpcException _fault;
        private volatile bool _localClose;
        private volatile bool _ended;
        private int _endedOnce;
        private long _lastActivity = System.Diagnostics.Stopwatch.GetTimestamp();
        private long _lineReserved; // bytes of the unfinished line taken from the server's receive budget

        /// <param name="secured">The stream the TLS/shared-secret handshake left (it already checked for HTTP);
        /// null for a plain socket.</param>
        public PlainSocketConnection(Socket socket, Stream secured, ISocketConnectionOwner owner, ChannelOptions options, SocketFraming framing,
            string channelName, bool isServerSide)
        {
            if (framing == SocketFraming.LengthPrefixed) throw new ArgumentOutOfRangeException(nameof(framing));
            Socket = socket;
            _owner = owner;
            _options = options;
            _framing = framing;
            _channelName = channelName;
            Id = Interlocked.Increment(ref s_nextId);
            RemoteAddress = SocketNames.RemoteOf(socket);
            if (secured != null)
            {
                _stream = secured;
            }
            else
            {
                _stream = new NetworkStream(socket, ownsSocket: true);
                if (isServerSide) _stream = _sniff = new HttpSniffStream(_stream);
            }
        }

        public int Id { get; }
        public Socket Socket { get; }
        public string RemoteAddress { get; }
        public int PeerProcessId => 0;
        public int PeerMaxMessageSize => int.MaxValue;
        public IpcChannel SenderView { get; set; }

        /// <summary>The channel whose received-message counters this connection updates.</summary>
        public IpcChannel CountersOf { get; set; }

        public bool IsEnded => _ended;
        public IpcException Fault => _fault;

        public void Start()
        {
            _reader = new Thread(ReadLoop, 256 * 1024) { IsBackground = true, Name = $"PsIpc {_framing} reader {_channelName}#{Id}" };
            _reader.Start();
        }

        public bool WaitForOpen(Deadline deadline, CancellationToken cancellationToken) => true; // no handshake

        public void Enqueue(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
            ThrowIfUnusable();
            byte[] payload = frame.Payload;
            bool addNewLine = _framing == SocketFraming.Line && (payload.Length == 0 || payload[payload.Length - 1] != (byte)'\n');
            // Wait for the write lock in short slices, so that Ctrl+C (the token) ends the wait at once.
            while (!Monitor.TryEnter(_writeLock, Math.Min(50, deadline.RemainingMilliseconds < 0 ? 50 : deadline.RemainingMilliseconds)))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (deadline.HasExpired)
                {
                    throw new IpcException(IpcErrorKind.SendTimeout, $"Timed out waiting to write to '{_channelName}': another send is blocked.", _channelName);
                }
            }
            try
            {
                cancellationToken.ThrowIfCancellationRequested();
                Interlocked.Exchange(ref _lastActivity, System.Diagnostics.Stopwatch.GetTimestamp());
                int ms = deadline.RemainingMilliseconds;
                Socket.SendTimeout = ms < 0 ? 0 : Math.Max(ms, 1);
                // A write blocked on a peer that does not read ends on Ctrl+C by aborting the connection:
                // part of the message may be out, so the stream could not be used again anyway.
                using (cancellationToken.Register(() => Abort(new IpcException(IpcErrorKind.ChannelClosed,
                    $"A send to '{_channelName}' was stopped while the peer was not reading; the connection was closed.", _channelName))))
                {
                    _stream.Write(payload, 0, payload.Length);
                    if (addNewLine) _stream.Write(NewLine, 0, 1);
                }
                cancellationToken.ThrowIfCancellationRequested();
            }
            catch (IOException e) when (e.InnerException is SocketException se && se.SocketErrorCode == SocketError.TimedOut)
            {
                // Part of the message may have been written: the stream is no longer usable.
                Abort(new IpcException(IpcErrorKind.SendTimeout, $"Timed out writing to '{_channelName}': the peer is not reading.", _channelName, e));
                throw new IpcException(IpcErrorKind.SendTimeout, $"Timed out writing to '{_channelName}': the peer is not reading.", _channelName, e);
            }
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                var fault = new IpcException(IpcErrorKind.PeerDisconnected,
                    $"Writing to the peer of '{_channelName}' failed: the peer has gone ({e.Message}).", _channelName, e);
                if (_fault == null && !_localClose) _fault = fault;
                if (_readerDone.IsSet) End(fault); // half-closed, and now gone altogether
                throw fault;
            }
            finally
            {
                Monitor.Exit(_writeLock);
            }
        }

        public void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            // Sends are written before Enqueue returns: nothing waits in a queue.
        }

        public void Close(Deadline deadline)
        {
            _localClose = true;
            // Sends are synchronous, so everything sent has been written; shut down the sending side so the
            // peer reads the end of the stream, then give the reader a moment to see the peer's end too.
            try { Socket.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
            int ms = deadline.RemainingMilliseconds;
            _readerDone.Wait(ms < 0 || ms > 200 ? 200 : ms);
            Abort(null);
        }

        public long LastActivity => Interlocked.Read(ref _lastActivity);

        // Line and Raw have no way to say why: the peer sees the end of the stream.
        public void Expire(IpcException reason) => Abort(reason);

        public void Abort(IpcException reason)
        {
            if (reason != null && _fault == null) _fault = reason;
            if (reason == null) _localClose = true;
            try { _abort.Cancel(); } catch (ObjectDisposedException) { }
            try { _stream.Dispose(); } catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException) { }
            // Never started, or half-closed (the reader left without ending it): nobody else will report the end.
            if (_reader == null || _readerDone.IsSet) End(reason);
        }

        private void ThrowIfUnusable()
        {
            if (_fault != null)
            {
                throw new IpcException(IpcErrorKind.PeerDisconnected, $"'{_channelName}' can no longer send: {_fault.Message}", _channelName, _fault);
            }
            if (_ended || _localClose)
            {
                throw new IpcException(IpcErrorKind.PeerDisconnected, $"The peer of '{_channelName}' has closed the connection.", _channelName);
            }
        }

        private void ReadLoop()
        {
            int max = Math.Max(1, _options.MaxMessageSize);
            var buffer = new byte[_framing == SocketFraming.Raw ? Math.Min(ReadBufferSize, max) : ReadBufferSize];
            var line = new MemoryStream();
            var messages = new List<IpcMessage>(64);
            IpcException fault = null;
            bool halfClosed = false;
            try
            {
                while (true)
                {
                    int n = _stream.Read(buffer, 0, buffer.Length);
                    if (n == 0)
                    {
                        if (line.Length > 0) messages.Add(TextMessage(line)); // a last line without "\n"
                        bool keep = _owner.KeepsHalfClosed && !_localClose && SenderView != null;
                        if (keep) messages.Add(IpcMessage.ForEndOfInput(SenderView));
                        Deliver(messages);
                        halfClosed = keep; // still writable: replies go out until it is closed
                        break;
                    }
                    if (_framing == SocketFraming.Raw)
                    {
                        var payload = new byte[n];
                        Buffer.BlockCopy(buffer, 0, payload, 0, n);
                        messages.Add(new IpcMessage(MessageFormat.Bytes, payload, SenderView));
                    }
                    else
                    {
                        fault = CutLines(buffer, n, line, messages, max);
                    }
                    Deliver(messages);
                    if (fault != null) break;
                }
            }
            catch (OperationCanceledException) { }
            catch (InvalidOperationException) { } // the owner's queue was completed: it closed
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                if (_sniff != null && _sniff.SawHttp) fault = HttpSniffer.Refusal(_channelName);
                else if (!_localClose)
                {
                    fault = new IpcException(IpcErrorKind.PeerDisconnected,
                        $"The connection to the peer of '{_channelName}' broke: {e.Message}", _channelName, e);
                }
            }
            finally
            {
                _options.ReceiveBudget?.Release(_lineReserved);
                _lineReserved = 0;
                if (!halfClosed) End(_fault ?? fault);
                _readerDone.Set();
                // An Abort or Close that came while the reader was leaving saw it still running and left the end
                // to it: report it now (End runs once).
                if (halfClosed && (_localClose || _fault != null)) End(_fault);
            }
        }

        private IpcException CutLines(byte[] buffer, int count, MemoryStream line, List<IpcMessage> messages, int max)
        {
            int start = 0;
            for (int i = 0; i < count; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                line.Write(buffer, start, i - start);
                if (line.Length > max) return LineTooLong(line.Length, max);
                messages.Add(TextMessage(line));
                start = i + 1;
            }
            if (count - start > 0 && !ReserveLine(count - start)) return OverBudget();
            line.Write(buffer, start, count - start);
            return line.Length > max ? LineTooLong(line.Length, max) : null;
        }

        // Only what stays buffered past a read (an unfinished line) is taken from the server's budget.
        private bool ReserveLine(long bytes)
        {
            ReceiveBudget budget = _options.ReceiveBudget;
            if (budget == null) return true;
            if (!budget.TryReserve(bytes)) return false;
            _lineReserved += bytes;
            return true;
        }

        private IpcException OverBudget() =>
            new IpcException(IpcErrorKind.ServerBusy,
                $"'{_channelName}' already holds {_options.ReceiveBudget.Used} bytes of unfinished lines and messages from its clients (its limit is {_options.ReceiveBudget.Limit}); this connection was closed.", _channelName);

        private IpcException LineTooLong(long length, int max) =>
            new IpcException(IpcErrorKind.MessageTooLarge,
                $"A client of '{_channelName}' sent a line of more than {max} bytes (at least {length}) without a newline; the connection was closed.", _channelName);

        private IpcMessage TextMessage(MemoryStream line)
        {
            byte[] bytes = line.ToArray();
            int length = bytes.Length;
            if (length > 0 && bytes[length - 1] == (byte)'\r') length--;
            if (length != bytes.Length) Array.Resize(ref bytes, length);
            line.SetLength(0);
            _options.ReceiveBudget?.Release(_lineReserved);
            _lineReserved = 0;
            return new IpcMessage(MessageFormat.Text, bytes, SenderView);
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
            Interlocked.Exchange(ref _lastActivity, System.Diagnostics.Stopwatch.GetTimestamp());
            int added = _owner.Inbound.TryAddRange(messages, m => m.Size + 64L, Deadline.Infinite, _abort.Token);
            (CountersOf ?? SenderView)?.CountReceived(added - markers, bytes);
            messages.Clear();
        }

        private void End(IpcException fault)
        {
            if (Interlocked.Exchange(ref _endedOnce, 1) != 0) return;
            bool report = fault != null && !_localClose;
            if (report && _fault == null) _fault = fault;
            _ended = true;
            try { _abort.Cancel(); } catch (ObjectDisposedException) { }
            _owner.OnEnded(this, report ? fault : null);
            try { _stream.Dispose(); } catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException) { }
        }
    }
}
