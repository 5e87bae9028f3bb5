using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using CsCheck;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;
using Xunit;
using Xunit.Abstractions;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// The decoders of one payload or datagram: the Hello (Framing/Hello.cs TryParse), the Error frame
    /// (Channels/ErrorFrame.cs Decode) and the UDP datagram (Sockets/UdpDatagrams.cs Decode). Each must take any bytes,
    /// agree with docs/protocol.md on what they mean, and give back exactly what its encoder wrote.
    /// </summary>
    public sealed class PayloadDecoderFuzzTests
    {
        public const string HelloTarget = "hello";
        public const string ErrorFrameTarget = "error-frame";
        public const string UdpTarget = "udp-datagram";

        private readonly ITestOutputHelper _output;

        public PayloadDecoderFuzzTests(ITestOutputHelper output) => _output = output;

        private static Gen<byte[]> PayloadsFor(string target, Gen<byte[]> valid)
        {
            IReadOnlyList<byte[]> seeds = Corpus.Seeds(target);
            return Gen.Frequency((3, Streams.Random), (4, Streams.Mutated(seeds)), (2, valid), (3, Streams.Mutated(valid, seeds)));
        }

        // ---- Hello ----

        [Fact]
        public void AnyHelloPayloadParsesAsTheProtocolSaysAndAValidOneRoundTrips()
        {
            Gen<byte[]> valid = Gen.Select(Gen.Byte, Gen.Int, Gen.Int[0, int.MaxValue], Gen.Byte.Array[0, 8],
                (version, pid, max, extra) => FrameModel.HelloPayload(version, pid, max).Concat(extra).ToArray());
            Fuzz.Run(HelloTarget, PayloadsFor(HelloTarget, valid), CheckHello, p => p, p => Fuzz.Hex(p), _output);
        }

        internal static void CheckHello(byte[] payload)
        {
            Hello? hello;
            try
            {
                hello = Hello.TryParse(payload);
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"Hello.TryParse threw {e.GetType().Name}: {e.Message}");
            }
            bool isHello = payload.Length >= Hello.PayloadSize && payload.AsSpan(0, 5).SequenceEqual("PSIPC"u8);
            Fuzz.Expect(isHello == (hello != null), () => $"TryParse gave {(hello == null ? "null" : "a Hello")} for {payload.Length} bytes {Fuzz.Hex(payload)}");
            Fuzz.Outcome(hello == null ? "not a hello" : hello.Version == Hello.CurrentVersion ? "hello" : "other version");
            if (hello == null) return;
            uint max = BitConverter.ToUInt32(payload, 12);
            Assert.Equal(payload[5], hello.Version);
            Assert.Equal(BitConverter.ToInt32(payload, 8), hello.ProcessId);
            Assert.Equal(max > int.MaxValue ? int.MaxValue : (int)max, hello.MaxMessageSize);
            Fuzz.Expect(hello.MaxMessageSize >= 0, () => $"a negative maximum {hello.MaxMessageSize}");
            // What it says, said again, reads the same (the bytes after the 16th are ignored).
            Hello again = Hello.TryParse(hello.ToPayload())!;
            Assert.Equal((hello.Version, hello.ProcessId, hello.MaxMessageSize), (again.Version, again.ProcessId, again.MaxMessageSize));
        }

        // ---- Error frame ----

        private static readonly IpcErrorKind[] DecodedKinds =
        {
            IpcErrorKind.RemoteError, IpcErrorKind.PipeBusy, IpcErrorKind.ProtocolError, IpcErrorKind.MessageTooLarge,
            IpcErrorKind.ProtocolVersionMismatch, IpcErrorKind.AccessDenied, IpcErrorKind.AuthenticationRequired,
            IpcErrorKind.AuthenticationFailed, IpcErrorKind.HandshakeTimeout, IpcErrorKind.IdleTimeout,
            // Not code 10 (HandlerFailed): it answers one request inside a Reply frame; in an Error frame, which closes
            // the connection, it is RemoteError like any unknown code (a server must not report a client's
            // "handler failed"; found by the connection fuzzer, corpus connection/finding-error-frame-with-reply-code.bin).
        };

        [Fact]
        public void AnyErrorPayloadDecodesToADocumentedKindAndAnEncodedOneRoundTrips()
        {
            Gen<byte[]> valid = Gen.Select(Gen.Enum<IpcErrorKind>(), Gen.String, (kind, text) => ErrorFrame.Encode(kind, text));
            Fuzz.Run(ErrorFrameTarget, PayloadsFor(ErrorFrameTarget, valid), CheckErrorFrame, p => p, p => Fuzz.Hex(p), _output);

            // And every kind with any text: the code table of docs/protocol.md section 5, the text intact.
            Gen.Select(Gen.Enum<IpcErrorKind>(), Gen.String).Sample((kind, text) =>
            {
                IpcException decoded = ErrorFrame.Decode(ErrorFrame.Encode(kind, text), "fuzz");
                IpcErrorKind expected = kind == IpcErrorKind.ServerBusy ? IpcErrorKind.PipeBusy : DecodedKinds.Contains(kind) ? kind : IpcErrorKind.RemoteError;
                Assert.Equal(expected, decoded.Kind);
                Assert.Equal("The peer closed the connection: " + Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text)), decoded.Message);
            }, iter: 20000);
        }

        internal static void CheckErrorFrame(byte[] payload)
        {
            IpcException decoded;
            try
            {
                decoded = ErrorFrame.Decode(payload, "fuzz");
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"ErrorFrame.Decode threw {e.GetType().Name}: {e.Message}");
            }
            Fuzz.Outcome(decoded.Kind.ToString());
            Fuzz.Expect(DecodedKinds.Contains(decoded.Kind), () => $"code {(payload.Length > 0 ? payload[0] : -1)} became {decoded.Kind}");
            if (payload.Length == 0)
            {
                Assert.Equal(IpcErrorKind.RemoteError, decoded.Kind);
                return;
            }
            Assert.Equal(payload[0] is >= 1 and <= 9 ? DecodedKinds[payload[0]] : IpcErrorKind.RemoteError, decoded.Kind);
            Assert.Equal("The peer closed the connection: " + Encoding.UTF8.GetString(payload, 1, payload.Length - 1), decoded.Message);
            Assert.Equal("fuzz", decoded.Target);
        }

        // ---- UDP datagram ----

        public sealed record Datagram(byte[] Bytes, int Count, SocketFraming Framing, int Max)
        {
            public override string ToString() => $"{Framing}, max {Max}, count {Count} of {Bytes.Length}: {Fuzz.Hex(Bytes)}";
        }

        [Fact]
        public void AnyDatagramIsOneMessageOrADroppedOneWithTheReasonAndAnEncodedOneRoundTrips()
        {
            var framings = Gen.OneOf(SocketFraming.LengthPrefixed, SocketFraming.Line, SocketFraming.Raw);
            Gen<byte[]> valid = Gen.Select(FrameModel.DataType, Gen.Byte.Array[0, 300], framings, (type, payload, framing) =>
                UdpDatagrams.Encode(new OutgoingFrame((FrameType)type, payload), framing, System.Net.Sockets.AddressFamily.InterNetwork, "fuzz"));
            Gen<Datagram> cases = Gen.Select(PayloadsFor(UdpTarget, valid), Gen.Int[0, 8], framings,
                Gen.OneOf(0, 1, 5, 64, 1000, UdpDatagrams.MaxIPv4Payload, int.MaxValue),
                (bytes, spare, framing, max) => new Datagram(bytes, Math.Max(0, bytes.Length - spare % 3 * spare), framing, max));
            Fuzz.Run(UdpTarget, cases, CheckDatagram, d => d.Bytes, d => d.ToString(), _output);
        }

        internal static void CheckDatagram(Datagram d)
        {
            IpcException? dropped;
            MessageFormat format;
            byte[]? payload;
            try
            {
                dropped = UdpDatagrams.TryDecode(d.Bytes, d.Count, d.Framing, d.Max, "fuzz", "127.0.0.1:1", out format, out payload, out IpcException? invalid)
                    ? null
                    : invalid;
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"UdpDatagrams.Decode threw {e.GetType().Name}: {e.Message}");
            }
            // The model: docs/protocol.md 11, "UDP".
            byte[] datagram = d.Bytes.AsSpan(0, d.Count).ToArray();
            IpcErrorKind? reason = null;
            byte[] expected = datagram;
            var expectedFormat = MessageFormat.Bytes;
            if (d.Framing == SocketFraming.LengthPrefixed)
            {
                if (d.Count < 5 || BitConverter.ToUInt32(datagram, 0) != d.Count - 5 || !FrameModel.IsData(datagram[4])) reason = IpcErrorKind.ProtocolError;
                else
                {
                    expected = datagram.AsSpan(5).ToArray();
                    expectedFormat = (MessageFormat)datagram[4];
                }
            }
            else if (d.Framing == SocketFraming.Line)
            {
                expectedFormat = MessageFormat.Text;
                int n = datagram.Length;
                if (n > 0 && datagram[n - 1] == '\n')
                {
                    n--;
                    if (n > 0 && datagram[n - 1] == '\r') n--;
                }
                expected = datagram.AsSpan(0, n).ToArray();
            }
            if (reason == null && expected.Length > d.Max) reason = IpcErrorKind.MessageTooLarge;

            Fuzz.Outcome($"{d.Framing} {dropped?.Kind.ToString() ?? "message"}");
            Fuzz.Expect(dropped?.Kind == reason, () => $"Decode said {dropped?.Kind.ToString() ?? "a message"}; the datagram calls for {reason?.ToString() ?? "a message"}");
            if (dropped != null)
            {
                Assert.Null(payload);
                return;
            }
            Assert.Equal(expectedFormat, format);
            Fuzz.Expect(payload!.AsSpan().SequenceEqual(expected), () => $"the message is {Fuzz.Hex(payload!)}, expected {Fuzz.Hex(expected)}");
            Fuzz.Expect(payload!.Length <= d.Max, () => $"a {payload!.Length}-byte message with a maximum of {d.Max}");
        }
    }
}
