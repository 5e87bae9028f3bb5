namespace PsIpc.Transport.Framing
{
    /// <summary>One decoded frame: its type and its payload (never null; empty for 0 bytes).</summary>
    public readonly struct Frame
    {
        public Frame(FrameType type, byte[] payload)
            : this(type, payload, 0)
        {
        }

        internal Frame(FrameType type, byte[] payload, long budgetHeld)
        {
            Type = type;
            Payload = payload;
            BudgetHeld = budgetHeld;
        }

        public FrameType Type { get; }
        public byte[] Payload { get; }

        /// <summary>Bytes of the server's receive budget this frame's payload still holds (given back when it is handed out).</summary>
        internal long BudgetHeld { get; }
    }
}
