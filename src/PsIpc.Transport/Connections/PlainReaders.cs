using System;
using System.Collections.Generic;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Connections
{
    /// <summary>
    /// Line framing: every "\n"-terminated line (a trailing "\r" removed) is one Text message; a last line
    /// without "\n" counts at the end of the stream. A line longer than the maximum message size ends the
    /// connection (MessageTooLarge) before any of its bytes past the maximum is copied. What stays buffered past
    /// a read (an unfinished line) is held in a buffer of at most the maximum message size, taken whole from the
    /// server's receive budget; when the line is complete the message keeps that share until the server hands
    /// it out, and the buffer goes with it (a connection keeps no buffer between lines).
    /// </summary>
    internal sealed class LineReader : IFrameReader
    {
        private static readonly byte[] Empty = Array.Empty<byte>();
        private const int FirstCapacity = 256;
        private readonly int _max;
        private readonly ReceiveBudget? _budget;
        private byte[] _line = Empty; // the unfinished line: its first _length bytes
        private int _length;
        private long _reserved;       // what _line takes of the budget: all of it

        public LineReader(ChannelOptions options)
        {
            _max = Math.Max(1, options.MaxMessageSize);
            _budget = options.ReceiveBudget;
        }

        public bool IsMidFrame => _length > 0;

        public long PartialBytes => _length;

        /// <summary>The bytes held for the unfinished line, what the fuzz tests bound.</summary>
        internal long BufferCapacity => _line.Length;

        public ArraySegment<byte> DirectTarget(int minimum) => default;

        public void Advance(int count, List<Frame> frames) => throw new InvalidOperationException("Line framing reads into its buffer.");

        public void Feed(byte[] buffer, int offset, int count, List<Frame> frames)
        {
            int start = offset, end = offset + count;
            for (int i = offset; i < end; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                frames.Add(TakeLine(buffer, start, i - start));
                start = i + 1;
            }
            if (end > start) Append(buffer, start, end - start);
        }

        public void Finish(List<Frame> frames)
        {
            if (_length > 0) frames.Add(TakeLine(Empty, 0, 0));
        }

        public void ReleaseBudget()
        {
            _budget?.Release(_reserved);
            _reserved = 0;
            _line = Empty;
            _length = 0;
        }

        // Keeps the start of a line until its end arrives, in a buffer that grows with it up to the maximum.
        private void Append(byte[] buffer, int offset, int count)
        {
            long length = (long)_length + count;
            if (length > _max) throw TooLong(length);
            if (length > _line.Length)
            {
                int capacity = (int)Math.Min(Math.Max(length, Math.Max(FirstCapacity, 2L * _line.Length)), _max);
                long more = capacity - _line.Length;
                if (_budget != null)
                {
                    if (!_budget.TryReserve(more))
                    {
                        throw new IpcException(IpcErrorKind.ServerBusy,
                            $"The server already holds {_budget.Used} bytes of messages from its clients (its limit is {_budget.Limit}); this connection's unfinished line does not fit now.");
                    }
                    _reserved += more;
                }
                Array.Resize(ref _line, capacity);
            }
            Buffer.BlockCopy(buffer, offset, _line, _length, count);
            _length = (int)length;
        }

        // The line is what is buffered, then count bytes of buffer; its length is checked before anything is copied.
        private Frame TakeLine(byte[] buffer, int offset, int count)
        {
            long length = (long)_length + count;
            if (length > _max) throw TooLong(length);
            byte last = count > 0 ? buffer[offset + count - 1] : _length > 0 ? _line[_length - 1] : (byte)0;
            int keep = (int)length - (last == (byte)'\r' ? 1 : 0);
            var payload = new byte[keep];
            int fromLine = Math.Min(_length, keep);
            Buffer.BlockCopy(_line, 0, payload, 0, fromLine);
            if (keep > fromLine) Buffer.BlockCopy(buffer, offset, payload, fromLine, keep - fromLine);
            // The message keeps at most its own size of what the buffer took; the rest, and the buffer, go back.
            long held = Math.Min(_reserved, payload.Length);
            _budget?.Release(_reserved - held);
            _reserved = 0;
            _line = Empty;
            _length = 0;
            return new Frame(FrameType.Text, payload, held);
        }

        private IpcException TooLong(long length) =>
            new IpcException(IpcErrorKind.MessageTooLarge,
                $"The peer sent a line of more than {_max} bytes (at least {length}) without a newline; the connection was closed.");
    }

    /// <summary>Raw framing: whatever one read returns (at most the maximum message size) is one Bytes message.</summary>
    internal sealed class RawReader : IFrameReader
    {
        private readonly int _max;

        public RawReader(int maxMessageSize) => _max = Math.Max(1, maxMessageSize);

        public bool IsMidFrame => false;

        public long PartialBytes => 0;

        public ArraySegment<byte> DirectTarget(int minimum) => default;

        public void Advance(int count, List<Frame> frames) => throw new InvalidOperationException("Raw framing reads into its buffer.");

        public void Feed(byte[] buffer, int offset, int count, List<Frame> frames)
        {
            while (count > 0)
            {
                int n = Math.Min(count, _max);
                var payload = new byte[n];
                Buffer.BlockCopy(buffer, offset, payload, 0, n);
                frames.Add(new Frame(FrameType.Bytes, payload));
                offset += n;
                count -= n;
            }
        }

        public void Finish(List<Frame> frames)
        {
        }

        public void ReleaseBudget()
        {
        }
    }
}
