namespace PsIpc.Transport.Framing
{
    /// <summary>The type tag after every frame's length. docs/protocol.md is the normative description.</summary>
    public enum FrameType : byte
    {
        Hello = 0x01,
        Goodbye = 0x02,
        Error = 0x03,

        // The shared-secret exchange before the Hello (sockets started with -Secret; docs/protocol.md 11).
        AuthRequest = 0x04,
        AuthChallenge = 0x05,
        AuthResponse = 0x06,
        AuthAccepted = 0x07,

        Text = 0x10,
        Bytes = 0x11,
        CliXml = 0x12,
        Json = 0x13,

        // Correlated messages (docs/protocol.md 4): sent only to a peer whose Hello set
        // Hello.CorrelationFlag. Payload: correlation id u32 LE, the message's type u8, the message.
        Request = 0x14,
        Reply = 0x15,
    }

    /// <summary>How a message's payload is encoded; the data frame types.</summary>
    public enum MessageFormat : byte
    {
        Text = FrameType.Text,
        Bytes = FrameType.Bytes,
        CliXml = FrameType.CliXml,
        Json = FrameType.Json,
    }

    public static class FrameTypes
    {
        public static bool IsData(FrameType type) =>
            type == FrameType.Text || type == FrameType.Bytes || type == FrameType.CliXml || type == FrameType.Json;

        /// <summary>A Request or Reply frame: a message with a correlation id in front of it.</summary>
        public static bool IsCorrelated(FrameType type) => type == FrameType.Request || type == FrameType.Reply;

        /// <summary>A frame that carries a message (data or correlated): limited by the maximum message size.</summary>
        public static bool CarriesMessage(FrameType type) => IsData(type) || IsCorrelated(type);

        public static bool IsKnown(FrameType type) =>
            CarriesMessage(type) || type == FrameType.Hello || type == FrameType.Goodbye || type == FrameType.Error;
    }
}
