using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;
using Xunit.Abstractions;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// Every file of the corpus, replayed through its target's checks in fixed configurations (sizes, budgets, splits,
    /// endings): the valid and hostile seeds, and every failure a fuzzer found (finding-*.bin), as its own test case.
    /// Deterministic, and quick: this is the regression suite; the [Fact]s of the targets are the search.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class CorpusReplayTests
    {
        private readonly ITestOutputHelper _output;

        public CorpusReplayTests(ITestOutputHelper output) => _output = output;

        public static IEnumerable<object[]> Files() =>
            Fuzz.Targets.SelectMany(target => Corpus.FileNames(target).Select(file => new object[] { target, file }));

        [Theory]
        [MemberData(nameof(Files))]
        public void ReplaysCleanly(string target, string file)
        {
            byte[] bytes = Corpus.Read(target, file);
            switch (target)
            {
                case FrameParserFuzzTests.Target:
                    foreach (var c in FrameParserFuzzTests.Replays(bytes)) FrameParserFuzzTests.Check(c);
                    break;
                case PayloadDecoderFuzzTests.HelloTarget:
                    PayloadDecoderFuzzTests.CheckHello(bytes);
                    break;
                case PayloadDecoderFuzzTests.ErrorFrameTarget:
                    PayloadDecoderFuzzTests.CheckErrorFrame(bytes);
                    break;
                case PayloadDecoderFuzzTests.UdpTarget:
                    foreach (var framing in Enum.GetValues<PsIpc.Transport.Sockets.SocketFraming>())
                    foreach (int max in new[] { 0, 5, 65507 })
                        PayloadDecoderFuzzTests.CheckDatagram(new PayloadDecoderFuzzTests.Datagram(bytes, bytes.Length, framing, max));
                    break;
                case PlainReaderFuzzTests.LineTarget:
                    foreach (var c in PlainReaderFuzzTests.Replays(bytes)) PlainReaderFuzzTests.CheckLine(c);
                    break;
                case PlainReaderFuzzTests.RawTarget:
                    foreach (var c in PlainReaderFuzzTests.Replays(bytes)) PlainReaderFuzzTests.CheckRaw(c);
                    break;
                case ConnectionFuzzTests.Target:
                    using (var connection = new ConnectionFuzzTests(_output))
                    {
                        foreach (var c in ConnectionFuzzTests.Replays(bytes)) connection.Check(c);
                    }
                    break;
                case SocketHandshakeFuzzTests.ServerTarget:
                    using (var handshake = new SocketHandshakeFuzzTests(_output))
                    {
                        foreach (var c in SocketHandshakeFuzzTests.Replays(bytes)) handshake.CheckServer(c);
                    }
                    break;
                case SocketHandshakeFuzzTests.ClientTarget:
                    using (var handshake = new SocketHandshakeFuzzTests(_output))
                    {
                        foreach (var c in SocketHandshakeFuzzTests.Replays(bytes)) handshake.CheckClient(c);
                    }
                    break;
                case SharedMemoryFuzzTests.SegmentTarget:
                case SharedMemoryFuzzTests.QueueTarget:
                    using (var shm = new SharedMemoryFuzzTests(_output))
                    {
                        foreach (var c in SharedMemoryFuzzTests.Replays(bytes)) shm.Check(c);
                    }
                    break;
                default:
                    throw new Xunit.Sdk.XunitException($"No replay for target '{target}'.");
            }
        }

        [Fact]
        public void EveryTargetHasValidAndHostileSeeds()
        {
            foreach (string target in Fuzz.Targets)
            {
                var names = Corpus.FileNames(target);
                Assert.True(names.Any(n => n.StartsWith("valid-", StringComparison.Ordinal)), $"corpus/{target} has no valid-*.bin");
                Assert.True(names.Any(n => n.StartsWith("hostile-", StringComparison.Ordinal) || n.StartsWith("finding-", StringComparison.Ordinal)), $"corpus/{target} has no hostile-*.bin");
            }
        }
    }
}
