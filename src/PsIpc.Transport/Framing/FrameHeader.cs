namespace PsIpc.Transport.Framing
{
    /// <summary>
    /// Every frame is a 5-byte header, then the payload:
    /// a 32-bit little-endian unsigned payload length, then a one-byte <see cref="FrameType"/>.
    /// </summary>
    public static class FrameHeader
    {
        public const int Size = 5;

        /// <summary>The default largest payload a PsIpc endpoint accepts: 64 MiB.</summary>
        public const int DefaultMaxMessageSize = 64 * 1024 * 1024;

        public static void Write(byte[] buffer, int offset, int payloadLength, FrameType type)
        {
            uint len = (uint)payloadLength;
            buffer[offset] = (byte)len;
            buffer[offset + 1] = (byte)(len >> 8);
            buffer[offset + 2] = (byte)(len >> 16);
            buffer[offset + 3] = (byte)(len >> 24);
            buffer[offset + 4] = (byte)type;
        }

        /// <summary>One whole frame: the header, then the payload, in a new array.</summary>
        public static byte[] Frame(FrameType type, byte[] payload)
        {
            var frame = new byte[Size + payload.Length];
            Write(frame, 0, payload.Length, type);
            System.Buffer.BlockCopy(payload, 0, frame, Size, payload.Length);
            return frame;
        }

        public static uint ReadLength(byte[] buffer, int offset) =>
            buffer[offset] | (uint)buffer[offset + 1] << 8 | (uint)buffer[offset + 2] << 16 | (uint)buffer[offset + 3] << 24;

        internal static void WriteUInt32(byte[] buffer, int offset, uint value)
        {
            buffer[offset] = (byte)value;
            buffer[offset + 1] = (byte)(value >> 8);
            buffer[offset + 2] = (byte)(value >> 16);
            buffer[offset + 3] = (byte)(value >> 24);
        }
    }
}
