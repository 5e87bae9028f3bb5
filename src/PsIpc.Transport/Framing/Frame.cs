namespace PsIpc.Transport.Framing
{
    /// <summary>One decoded frame: its type and its payload (never null; empty for 0 bytes).</summary>
    public readonly struct Frame
    {
        public Frame(FrameType type, byte[] payload)
        {
            Type = type;
            Payload = payload;
        }

        public FrameType Type { get; }
        public byte[] Payload { get; }
    }
}
