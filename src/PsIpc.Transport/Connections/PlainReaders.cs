#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Connections
{
    /// <summary>
    /// Line framing: every "\n"-terminated line (a trailing "\r" removed) is one Text message; a last line
    /// without "\n" counts at the end of the stream. A line longer than the maximum message size ends the
    /// connection (MessageTooLarge). What stays buffered past a read (an unfinished line) is taken from the
    /// server's receive budget and travels with the message until the server hands it out.
    /// </summary>
    internal sealed class LineReader : IFrameReader
    {
        private readonly MemoryStream _line = new MemoryStream();
        private readonly int _max;
        private readonly ReceiveBudget? _budget;
        private long _reserved;

        public LineReader(ChannelOptions options)
        {
            _max = Math.Max(1, options.MaxMessageSize);
            _budget = options.ReceiveBudget;
        }

        public bool IsMidFrame => _line.Length > 0;

        public long PartialBytes => _line.Length;

        public ArraySegment<byte> DirectTarget(int minimum) => default;

        public void Advance(int count, List<Frame> frames) => throw new InvalidOperationException("Line framing reads into its buffer.");

        public void Feed(byte[] buffer, int offset, int count, List<Frame> frames)
        {
            int start = offset, end = offset + count;
            for (int i = offset; i < end; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                _line.Write(buffer, start, i - start);
                if (_line.Length > _max) throw TooLong();
                frames.Add(TakeLine());
                start = i + 1;
            }
            int rest = end - start;
            if (rest == 0) return;
            if (_budget != null)
            {
                if (!_budget.TryReserve(rest))
                {
                    throw new IpcException(IpcErrorKind.ServerBusy,
                        $"The server already holds {_budget.Used} bytes of messages from its clients (its limit is {_budget.Limit}); this connection's unfinished line does not fit now.");
                }
                _reserved += rest;
            }
            _line.Write(buffer, start, rest);
            if (_line.Length > _max) throw TooLong();
        }

        public void Finish(List<Frame> frames)
        {
            if (_line.Length > 0) frames.Add(TakeLine());
        }

        public void ReleaseBudget()
        {
            _budget?.Release(_reserved);
            _reserved = 0;
        }

        private Frame TakeLine()
        {
            byte[] bytes = _line.ToArray();
            int length = bytes.Length;
            if (length > 0 && bytes[length - 1] == (byte)'\r') length--;
            if (length != bytes.Length) Array.Resize(ref bytes, length);
            _line.SetLength(0);
            long reserved = _reserved;
            _reserved = 0;
            return new Frame(FrameType.Text, bytes, reserved);
        }

        private IpcException TooLong() =>
            new IpcException(IpcErrorKind.MessageTooLarge,
                $"The peer sent a line of more than {_max} bytes (at least {_line.Length}) without a newline; the connection was closed.");
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
