using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// A frame waiting in a connection's send queue. A Request or Reply frame (docs/protocol.md 4) also carries
    /// its correlation id and the type of the message it wraps (a data type, or Error for a failed request).
    /// </summary>
    internal readonly struct OutgoingFrame
    {
        public OutgoingFrame(FrameType type, byte[] payload)
            : this(type, payload, 0, 0)
        {
        }

        public OutgoingFrame(FrameType type, byte[] payload, uint correlationId, FrameType innerType)
        {
            Type = type;
            Payload = payload;
            CorrelationId = correlationId;
            InnerType = innerType;
        }

        public FrameType Type { get; }
        public byte[] Payload { get; }

        /// <summary>The request this frame asks or answers (Request, Reply); 0 for an answer to no request in particular.</summary>
        public uint CorrelationId { get; }

        /// <summary>What a Request or Reply frame wraps: a data frame type, or Error (a reply that reports a failure).</summary>
        public FrameType InnerType { get; }

        public bool IsCorrelated => FrameTypes.IsCorrelated(Type);

        public long WireSize => FrameHeader.Size + (IsCorrelated ? FrameParser.CorrelationPrefixSize : 0) + Payload.Length;
    }
}
