using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    /// <summary>A frame waiting in a connection's send queue.</summary>
    internal readonly struct OutgoingFrame
    {
        public OutgoingFrame(FrameType type, byte[] payload)
        {
            Type = type;
            Payload = payload;
        }

        public FrameType Type { get; }
        public byte[] Payload { get; }
        public long WireSize => FrameHeader.Size + Payload.Length;
    }
}
