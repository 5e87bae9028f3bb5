using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using CsCheck;
using PsIpc.Transport;
using PsIpc.Transport.Framing;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// A reference reading of docs/protocol.md section 2, written from the page and not from FrameParser: the frames a
    /// stream holds, and the error a reader must report, for any stream. The oracle of the frame and connection targets.
    /// </summary>
    internal static class FrameModel
    {
        public const int ControlLimit = 64 * 1024;

        public sealed record Result(List<(FrameType Type, byte[] Payload)> Frames, IpcErrorKind? Error, int Partial);

        public static bool IsKnown(byte type) => type is 0x01 or 0x02 or 0x03 or >= 0x10 and <= 0x15;

        /// <summary>Request (0x14) and Reply (0x15): a correlation id and a type byte before the message (section 4).</summary>
        public static bool IsCorrelated(byte type) => type is 0x14 or 0x15;

        public static bool IsData(byte type) => type is >= 0x10 and <= 0x13;

        public static Result Parse(byte[] s, int maxMessageSize, bool requireHelloFirst)
        {
            var frames = new List<(FrameType, byte[])>();
            int pos = 0;
            while (s.Length - pos >= 5)
            {
                uint length = BitConverter.ToUInt32(s, pos);
                byte type = s[pos + 4];
                if (!IsKnown(type)) return new Result(frames, IpcErrorKind.ProtocolError, 0);
                if (requireHelloFirst && pos == 0 && type != 0x01 && type != 0x03) return new Result(frames, IpcErrorKind.ProtocolError, 0);
                long limit = IsData(type) ? maxMessageSize : IsCorrelated(type) ? maxMessageSize + 5L : ControlLimit;
                if (length > limit) return new Result(frames, IpcErrorKind.MessageTooLarge, 0);
                if (s.Length - pos - 5 < length) break;
                frames.Add(((FrameType)type, s.AsSpan(pos + 5, (int)length).ToArray()));
                pos += 5 + (int)length;
            }
            return new Result(frames, null, s.Length - pos);
        }

        public static byte[] Encode(IEnumerable<(FrameType Type, byte[] Payload)> frames)
        {
            var list = frames as IReadOnlyCollection<(FrameType Type, byte[] Payload)> ?? frames.ToList();
            var all = new byte[list.Sum(f => FrameHeader.Size + f.Payload.Length)];
            int at = 0;
            foreach (var (type, payload) in list)
            {
                FrameHeader.Write(all, at, payload.Length, type);
                Buffer.BlockCopy(payload, 0, all, at + FrameHeader.Size, payload.Length);
                at += FrameHeader.Size + payload.Length;
            }
            return all;
        }

        public static byte[] HelloPayload(byte version, int pid, int max) => new Hello(version, pid, max).ToPayload();

        public static bool SameFrames(IReadOnlyList<(FrameType Type, byte[] Payload)> expected, IReadOnlyList<(FrameType Type, byte[] Payload)> actual, bool prefixOnly)
        {
            if (prefixOnly ? actual.Count > expected.Count : actual.Count != expected.Count) return false;
            for (int i = 0; i < actual.Count; i++)
            {
                if (expected[i].Type != actual[i].Type || !expected[i].Payload.AsSpan().SequenceEqual(actual[i].Payload)) return false;
            }
            return true;
        }

        public static string Describe(IEnumerable<(FrameType Type, byte[] Payload)> frames) =>
            string.Join(" ", frames.Select(f => $"{f.Type}[{f.Payload.Length}]"));

        public static readonly Gen<byte> DataType = Gen.OneOf((byte)0x10, (byte)0x11, (byte)0x12, (byte)0x13);

        public static readonly Gen<byte[]> ValidHello = Gen.Select(Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue],
            (pid, max) => HelloPayload(Hello.CurrentVersion, pid, max));

        public static readonly Gen<(FrameType, byte[])> DataFrame = Gen.Select(DataType, Gen.Frequency(
            (30, Gen.Byte.Array[0, 64]), (8, Streams.Bulk(0, 2000)), (1, Streams.Bulk(60000, 70000))),
            (t, p) => ((FrameType)t, p));

        public static readonly Gen<(FrameType, byte[])> AnyFrame = Gen.Frequency(
            (12, DataFrame),
            (1, Gen.Const((FrameType.Goodbye, Array.Empty<byte>()))),
            (1, Gen.Select(Gen.Byte, Gen.String, (code, text) => (FrameType.Error, new[] { code }.Concat(Encoding.UTF8.GetBytes(text)).ToArray()))),
            (1, ValidHello.Select(h => (FrameType.Hello, h))));

        /// <summary>A well-formed stream: usually a Hello first, then frames of any type.</summary>
        public static readonly Gen<byte[]> ValidStream = Gen.Select(ValidHello, AnyFrame.Array[0, 12], Gen.Int[0, 9],
            (hello, frames, noHello) => Encode((noHello == 0 ? frames : frames.Prepend((FrameType.Hello, hello))).ToArray()));
    }
}
