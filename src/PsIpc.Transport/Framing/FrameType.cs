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

        public static bool IsKnown(FrameType type) =>
            IsData(type) || type == FrameType.Hello || type == FrameType.Goodbye || type == FrameType.Error;
    }
}
