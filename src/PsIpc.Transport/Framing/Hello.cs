using System;
using System.Text;

namespace PsIpc.Transport.Framing
{
    /// <summary>
    /// The first frame each side sends on a PsIpc connection.
    /// Payload (16 bytes, more allowed for later versions and ignored):
    /// "PSIPC" (ASCII) | version u8 | flags u8 | reserved u8 | process id u32 LE | max message size u32 LE.
    /// Flags: bit 0 (<see cref="CorrelationFlag"/>) the sender understands Request and Reply frames; version 1
    /// peers that know no flags send 0 and ignore them, so a set bit never reaches a peer that cannot use it.
    /// </summary>
    public sealed class Hello
    {
        public const byte CurrentVersion = 1;
        public const int PayloadSize = 16;
        private static readonly byte[] Magic = Encoding.ASCII.GetBytes("PSIPC");

        /// <summary>The Hello flag that announces Request/Reply frames (correlation ids, docs/protocol.md 4).</summary>
        public const byte CorrelationFlag = 0x01;

        public Hello(byte version, int processId, int maxMessageSize)
            : this(version, processId, maxMessageSize, 0)
        {
        }

        public Hello(byte version, int processId, int maxMessageSize, byte flags)
        {
            Version = version;
            ProcessId = processId;
            MaxMessageSize = maxMessageSize;
            Flags = flags;
        }

        public byte Version { get; }

        /// <summary>The flags byte: what the sender supports beyond version 1 (unknown bits are ignored).</summary>
        public byte Flags { get; }

        /// <summary>True when the sender announced Request/Reply frames.</summary>
        public bool SupportsCorrelation => (Flags & CorrelationFlag) != 0;
        public int ProcessId { get; }
        public int MaxMessageSize { get; }

        public byte[] ToPayload()
        {
            var payload = new byte[PayloadSize];
            Buffer.BlockCopy(Magic, 0, payload, 0, Magic.Length);
            payload[5] = Version;
            payload[6] = Flags;
            FrameHeader.WriteUInt32(payload, 8, (uint)ProcessId);
            FrameHeader.WriteUInt32(payload, 12, (uint)MaxMessageSize);
            return payload;
        }

        /// <summary>Parses a Hello payload; null when it is not one (wrong size or magic).</summary>
        public static Hello? TryParse(byte[]? payload)
        {
            if (payload == null || payload.Length < PayloadSize) return null;
            for (int i = 0; i < Magic.Length; i++)
            {
                if (payload[i] != Magic[i]) return null;
            }
            uint max = FrameHeader.ReadLength(payload, 12);
            return new Hello(payload[5], (int)FrameHeader.ReadLength(payload, 8),
                max > int.MaxValue ? int.MaxValue : (int)max, payload[6]);
        }
    }
}
