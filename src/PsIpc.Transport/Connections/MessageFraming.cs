using System;
using System.Collections.Generic;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;

namespace PsIpc.Transport.Connections
{
    /// <summary>
    /// Cuts received bytes into frames, for one connection. <see cref="FrameParser"/> (the PsIpc protocol),
    /// <see cref="LineReader"/> and <see cref="RawReader"/> implement it.
    /// </summary>
    internal interface IFrameReader
    {
        /// <summary>Inside a large payload: where the next read may go directly (empty: read into the buffer).</summary>
        ArraySegment<byte> DirectTarget(int minimum);

        /// <summary>Accounts for bytes read into <see cref="DirectTarget"/>.</summary>
        void Advance(int count, List<Frame> frames);

        /// <summary>Parses bytes read into a buffer.</summary>
        void Feed(byte[] buffer, int offset, int count, List<Frame> frames);

        /// <summary>The stream ended: hands out what a framing completes at the end (a last line without "\n").</summary>
        void Finish(List<Frame> frames);

        bool IsMidFrame { get; }

        long PartialBytes { get; }

        /// <summary>Gives back what an unfinished frame holds of the server's receive budget.</summary>
        void ReleaseBudget();
    }

    /// <summary>
    /// How messages look on the wire: the PsIpc protocol (length-prefixed frames after a versioned hello), Line
    /// (UTF-8 text, one message a line) or Raw (bytes as they come). Each outgoing frame is written as a prefix,
    /// the payload and a suffix, so one writer serves them all.
    /// </summary>
    internal abstract class MessageFraming
    {
        public static readonly MessageFraming LengthPrefixed = new LengthPrefixedFraming();
        public static readonly MessageFraming Line = new LineFraming();
        public static readonly MessageFraming Raw = new RawFraming();

        public static MessageFraming For(SocketFraming framing) =>
            framing == SocketFraming.Line ? Line : framing == SocketFraming.Raw ? Raw : LengthPrefixed;

        public abstract SocketFraming Kind { get; }

        /// <summary>True for the PsIpc protocol: a hello opens the connection, goodbye and error frames end it.</summary>
        public virtual bool HasHandshake => false;

        /// <summary>
        /// Plain peers get no goodbye: on close this end shuts down its sending side and gives the reader a moment to
        /// see the peer's end, so that unread bytes do not turn the close into a reset that loses the last replies.
        /// </summary>
        public virtual bool LingersOnClose => true;

        public abstract IFrameReader CreateReader(ChannelOptions options);

        /// <summary>Bytes written before the payload (at most 10: a Request/Reply header).</summary>
        public abstract int PrefixSize(in OutgoingFrame frame);

        public abstract void WritePrefix(byte[] buffer, int offset, in OutgoingFrame frame);

        /// <summary>Bytes written after the payload (0 or 1).</summary>
        public virtual int SuffixSize(in OutgoingFrame frame) => 0;

        public virtual void WriteSuffix(byte[] buffer, int offset, in OutgoingFrame frame)
        {
        }

        public int EncodedSize(in OutgoingFrame frame) => PrefixSize(frame) + frame.Payload.Length + SuffixSize(frame);

        private sealed class LengthPrefixedFraming : MessageFraming
        {
            public override SocketFraming Kind => SocketFraming.LengthPrefixed;
            public override bool HasHandshake => true;
            public override bool LingersOnClose => false; // the goodbye frame tells the peer everything arrived

            public override IFrameReader CreateReader(ChannelOptions options) =>
                new FrameParser(options.MaxMessageSize) { RequireHelloFirst = true, Budget = options.ReceiveBudget };

            public override int PrefixSize(in OutgoingFrame frame) =>
                frame.IsCorrelated ? FrameHeader.Size + FrameParser.CorrelationPrefixSize : FrameHeader.Size;

            public override void WritePrefix(byte[] buffer, int offset, in OutgoingFrame frame)
            {
                if (!frame.IsCorrelated)
                {
                    FrameHeader.Write(buffer, offset, frame.Payload.Length, frame.Type);
                    return;
                }
                // Request/Reply: the header, then the correlation id and the wrapped message's type.
                FrameHeader.Write(buffer, offset, frame.Payload.Length + FrameParser.CorrelationPrefixSize, frame.Type);
                FrameHeader.WriteUInt32(buffer, offset + FrameHeader.Size, frame.CorrelationId);
                buffer[offset + FrameHeader.Size + 4] = (byte)frame.InnerType;
            }
        }

        private sealed class LineFraming : MessageFraming
        {
            public override SocketFraming Kind => SocketFraming.Line;

            public override IFrameReader CreateReader(ChannelOptions options) => new LineReader(options);

            public override int PrefixSize(in OutgoingFrame frame) => 0;

            public override void WritePrefix(byte[] buffer, int offset, in OutgoingFrame frame)
            {
            }

            // A message is written as its text followed by "\n", unless it already ends with one.
            public override int SuffixSize(in OutgoingFrame frame)
            {
                byte[] p = frame.Payload;
                return p.Length == 0 || p[p.Length - 1] != (byte)'\n' ? 1 : 0;
            }

            public override void WriteSuffix(byte[] buffer, int offset, in OutgoingFrame frame)
            {
                if (SuffixSize(frame) == 1) buffer[offset] = (byte)'\n';
            }
        }

        private sealed class RawFraming : MessageFraming
        {
            public override SocketFraming Kind => SocketFraming.Raw;

            public override IFrameReader CreateReader(ChannelOptions options) => new RawReader(options.MaxMessageSize);

            public override int PrefixSize(in OutgoingFrame frame) => 0;

            public override void WritePrefix(byte[] buffer, int offset, in OutgoingFrame frame)
            {
            }
        }
    }
}
