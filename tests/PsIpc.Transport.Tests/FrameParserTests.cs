using System;
using System.Collections.Generic;
using System.Linq;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Transport.Tests
{
    public class FrameParserTests
    {
        private static readonly FrameType[] Types =
            { FrameType.Text, FrameType.Bytes, FrameType.CliXml, FrameType.Json, FrameType.Hello, FrameType.Goodbye, FrameType.Error };

        // Sizes around the header size and the transport's 64 KiB read buffer.
        private static readonly int[] Sizes = { 0, 1, 4, 5, 6, 17, 1000, 65536 + 3 };

        private static (List<Frame> frames, byte[] stream) SampleStream()
        {
            var random = new Random(1234);
            var frames = new List<Frame>();
            var parts = new List<byte[]>();
            for (int i = 0; i < Sizes.Length; i++)
            {
                var payload = new byte[Sizes[i]];
                random.NextBytes(payload);
                var type = Types[i % Types.Length];
                frames.Add(new Frame(type, payload));
                parts.Add(Wire.Frame(type, payload));
            }
            return (frames, Wire.Concat(parts.ToArray()));
        }

        private static List<Frame> FeedInChunks(byte[] stream, IEnumerable<int> chunkSizes, int max = 1 << 20)
        {
            var parser = new FrameParser(max);
            var frames = new List<Frame>();
            int at = 0;
            foreach (int size in chunkSizes)
            {
                parser.Feed(stream, at, size, frames);
                at += size;
            }
            Assert.Equal(stream.Length, at);
            Assert.False(parser.IsMidFrame);
            Assert.Equal(0, parser.PartialBytes);
            return frames;
        }

        private static void AssertSameFrames(IReadOnlyList<Frame> expected, IReadOnlyList<Frame> actual)
        {
            Assert.Equal(expected.Count, actual.Count);
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.Equal(expected[i].Type, actual[i].Type);
                Assert.Equal(expected[i].Payload, actual[i].Payload);
            }
        }

        [Fact]
        public void ZeroBytePayloadYieldsAnEmptyNonNullPayload()
        {
            var parser = new FrameParser(1024);
            var frames = new List<Frame>();

            parser.Feed(Wire.Header(0, (byte)FrameType.Text), 0, FrameHeader.Size, frames);

            Frame frame = Assert.Single(frames);
            Assert.Equal(FrameType.Text, frame.Type);
            Assert.NotNull(frame.Payload);
            Assert.Empty(frame.Payload);
            Assert.False(parser.IsMidFrame);
        }

        [Fact]
        public void ZeroBytePayloadsAreTheOnlyFramesAParserWithMaxZeroAccepts()
        {
            var parser = new FrameParser(0);
            var frames = new List<Frame>();
            parser.Feed(Wire.Header(0, (byte)FrameType.Goodbye), 0, FrameHeader.Size, frames);
            Assert.Single(frames);

            var e = Assert.Throws<IpcException>(() => parser.Feed(Wire.Header(1, (byte)FrameType.Text), 0, FrameHeader.Size, frames));
            Assert.Equal(IpcErrorKind.MessageTooLarge, e.Kind);
        }

        [Fact]
        public void NegativeMaxMessageSizeIsRejected()
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => new FrameParser(-1));
        }

        [Fact]
        public void FrameOfExactlyMaxMessageSizeIsAccepted()
        {
            const int max = 4096;
            var payload = Enumerable.Range(0, max).Select(i => (byte)i).ToArray();
            var parser = new FrameParser(max);
            var frames = new List<Frame>();

            byte[] frame = Wire.Frame(FrameType.Bytes, payload);
            parser.Feed(frame, 0, frame.Length, frames);

            Assert.Equal(payload, Assert.Single(frames).Payload);
        }

        [Fact]
        public void FrameOfMaxMessageSizePlusOneIsRejectedFromItsHeaderAlone()
        {
            const int max = 4096;
            var parser = new FrameParser(max);
            var frames = new List<Frame>();

            // Only the header: the limit must be enforced before any payload byte arrives.
            var e = Assert.Throws<IpcException>(() => parser.Feed(Wire.Header(max + 1, (byte)FrameType.Bytes), 0, FrameHeader.Size, frames));

            Assert.Equal(IpcErrorKind.MessageTooLarge, e.Kind);
            Assert.Empty(frames);
        }

        [Fact]
        public void DefaultLimitPlusOneIsRejected()
        {
            var parser = new FrameParser(FrameHeader.DefaultMaxMessageSize);
            var frames = new List<Frame>();
            byte[] header = Wire.Header((uint)FrameHeader.DefaultMaxMessageSize + 1, (byte)FrameType.Text);

            var e = Assert.Throws<IpcException>(() => parser.Feed(header, 0, header.Length, frames));

            Assert.Equal(IpcErrorKind.MessageTooLarge, e.Kind);
        }

        [Theory]
        [InlineData(0x7FFFFFFFu)]
        [InlineData(0x80000000u)]
        [InlineData(0xFFFFFFFFu)]
        public void HugeLengthPrefixIsRejectedWithoutAllocatingThePayload(uint length)
        {
            var parser = new FrameParser(FrameHeader.DefaultMaxMessageSize);
            var frames = new List<Frame>();
            byte[] header = Wire.Header(length, (byte)FrameType.Bytes);
            parser.Feed(Wire.Frame(FrameType.Text, new byte[1]), 0, 6, frames); // warm up the code path
            frames.Clear();

            long before = GC.GetAllocatedBytesForCurrentThread();
            IpcException? e = null;
            try
            {
                parser.Feed(header, 0, header.Length, frames);
            }
            catch (IpcException caught)
            {
                e = caught;
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

            Assert.NotNull(e);
            Assert.Equal(IpcErrorKind.MessageTooLarge, e.Kind);
            // The exception and its message cost a few KiB; a payload buffer would cost gigabytes.
            Assert.True(allocated < 1024 * 1024, $"{allocated} bytes were allocated while rejecting the header");
        }

        [Fact]
        public void HugeAnnouncedLengthWithinAnIntMaxLimitCostsNoMoreThanWhatArrives()
        {
            // -MaxMessageSize accepts up to int.MaxValue. A header announcing 2^31-1 bytes once made the parser
            // call new byte[2^31-1]: an OutOfMemoryException the reader thread did not catch, which aborted
            // the whole process. A header alone must neither throw OutOfMemory nor reserve the announced size.
            var parser = new FrameParser(int.MaxValue);
            byte[] header = Wire.Header(0x7FFFFFFF, (byte)FrameType.Bytes);
            var frames = new List<Frame>();

            long before = GC.GetAllocatedBytesForCurrentThread();
            Exception e = Record.Exception(() => parser.Feed(header, 0, header.Length, frames));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

            Assert.False(e is OutOfMemoryException, "OutOfMemoryException: " + e?.Message);
            Assert.True(e == null || e is IpcException, $"unexpected {e?.GetType().Name}: {e?.Message}");
            Assert.True(allocated < 8 * 1024 * 1024, $"{allocated} bytes were allocated for a header alone");
            if (e == null) Assert.True(parser.IsMidFrame);
        }

        [Fact]
        public void FrameOfSeveralMebibytesArrivesWithExactlyItsLength()
        {
            var payload = new byte[3 * 1024 * 1024 + 7];
            new Random(5).NextBytes(payload);
            byte[] stream = Wire.Concat(Wire.Frame(FrameType.Bytes, payload), Wire.Frame(FrameType.Text, Wire.Text("next")));
            var chunks = new List<int>();
            for (int left = stream.Length; left > 0; left -= 65536) chunks.Add(Math.Min(65536, left));

            foreach (List<Frame> frames in new[] { FeedInChunks(stream, new[] { stream.Length }, 4 << 20), FeedInChunks(stream, chunks, 4 << 20) })
            {
                Assert.Equal(2, frames.Count);
                Assert.Equal(payload.Length, frames[0].Payload.Length);
                Assert.True(payload.AsSpan().SequenceEqual(frames[0].Payload));
                Assert.Equal("next", System.Text.Encoding.UTF8.GetString(frames[1].Payload));
            }
        }

        [Fact]
        public void HugeLengthPrefixIsRejectedWhenTheHeaderArrivesInPieces()
        {
            var parser = new FrameParser(FrameHeader.DefaultMaxMessageSize);
            var frames = new List<Frame>();
            byte[] header = Wire.Header(0x7FFFFFFF, (byte)FrameType.Bytes);

            parser.Feed(header, 0, 2, frames);
            parser.Feed(header, 2, 2, frames);
            var e = Assert.Throws<IpcException>(() => parser.Feed(header, 4, 1, frames));

            Assert.Equal(IpcErrorKind.MessageTooLarge, e.Kind);
        }

        [Fact]
        public void OneByteAtATimeYieldsTheSameFramesAsTheWholeStream()
        {
            (List<Frame> expected, byte[] stream) = SampleStream();

            List<Frame> whole = FeedInChunks(stream, new[] { stream.Length });
            List<Frame> byteByByte = FeedInChunks(stream, Enumerable.Repeat(1, stream.Length));

            AssertSameFrames(expected, whole);
            AssertSameFrames(expected, byteByByte);
        }

        [Fact]
        public void OddChunkSizesYieldTheSameFrames()
        {
            (List<Frame> expected, byte[] stream) = SampleStream();
            foreach (int chunk in new[] { 2, 3, 7, 4096, 65536 })
            {
                var sizes = new List<int>();
                for (int left = stream.Length; left > 0; left -= chunk) sizes.Add(Math.Min(chunk, left));
                AssertSameFrames(expected, FeedInChunks(stream, sizes));
            }
        }

        [Fact]
        public void ManyFramesInOneBufferAllComeOutInOrder()
        {
            const int count = 10000;
            var parts = new byte[count][];
            for (int i = 0; i < count; i++) parts[i] = Wire.Frame(FrameType.Text, Wire.Text(i.ToString()));
            byte[] stream = Wire.Concat(parts);

            List<Frame> frames = FeedInChunks(stream, new[] { stream.Length });

            Assert.Equal(count, frames.Count);
            for (int i = 0; i < count; i++) Assert.Equal(i.ToString(), System.Text.Encoding.UTF8.GetString(frames[i].Payload));
        }

        [Fact]
        public void FeedWithAnOffsetReadsOnlyTheGivenRange()
        {
            byte[] frame = Wire.Frame(FrameType.Json, Wire.Text("{}"));
            byte[] padded = Wire.Concat(new byte[] { 0xEE, 0xEE, 0xEE }, frame, new byte[] { 0xEE });
            var parser = new FrameParser(1024);
            var frames = new List<Frame>();

            parser.Feed(padded, 3, frame.Length, frames);

            Assert.Equal("{}", System.Text.Encoding.UTF8.GetString(Assert.Single(frames).Payload));
            Assert.False(parser.IsMidFrame);
        }

        [Fact]
        public void StreamSplitInTwoAtEveryOffsetYieldsTheSameFrames()
        {
            // Three frames, the middle one empty: every split point, including each byte of each header.
            byte[] a = Wire.Frame(FrameType.Text, Wire.Text("hello"));
            byte[] b = Wire.Frame(FrameType.Goodbye, Array.Empty<byte>());
            byte[] c = Wire.Frame(FrameType.Bytes, new byte[] { 1, 2, 3, 4, 5, 6, 7 });
            byte[] stream = Wire.Concat(a, b, c);
            List<Frame> expected = FeedInChunks(stream, new[] { stream.Length });
            Assert.Equal(3, expected.Count);

            for (int split = 0; split <= stream.Length; split++)
            {
                AssertSameFrames(expected, FeedInChunks(stream, new[] { split, stream.Length - split }));
            }
        }

        [Fact]
        public void HeaderSplitAcrossThreeFeedsAtEveryPairOfOffsets()
        {
            byte[] frame = Wire.Frame(FrameType.CliXml, Wire.Text("<Objs/>"));
            for (int first = 0; first <= FrameHeader.Size; first++)
            {
                for (int second = 0; first + second <= FrameHeader.Size; second++)
                {
                    List<Frame> frames = FeedInChunks(frame, new[] { first, second, frame.Length - first - second });
                    Frame only = Assert.Single(frames);
                    Assert.Equal(FrameType.CliXml, only.Type);
                    Assert.Equal("<Objs/>", System.Text.Encoding.UTF8.GetString(only.Payload));
                }
            }
        }

        [Fact]
        public void FreshParserIsNotMidFrame()
        {
            var parser = new FrameParser(1024);
            Assert.False(parser.IsMidFrame);
            Assert.Equal(0, parser.PartialBytes);
        }

        [Theory]
        [InlineData(1)]
        [InlineData(4)]
        public void TruncatedHeaderLeavesParserMidFrame(int headerBytes)
        {
            byte[] frame = Wire.Frame(FrameType.Text, Wire.Text("abc"));
            var parser = new FrameParser(1024);
            var frames = new List<Frame>();

            parser.Feed(frame, 0, headerBytes, frames);

            Assert.Empty(frames);
            Assert.True(parser.IsMidFrame);
            Assert.Equal(headerBytes, parser.PartialBytes);
        }

        [Fact]
        public void TruncatedPayloadLeavesParserMidFrameWithHeaderAndPayloadCounted()
        {
            byte[] first = Wire.Frame(FrameType.Text, Wire.Text("complete"));
            byte[] second = Wire.Frame(FrameType.Bytes, new byte[100]);
            byte[] stream = Wire.Concat(first, second);
            var parser = new FrameParser(1024);
            var frames = new List<Frame>();

            parser.Feed(stream, 0, first.Length + FrameHeader.Size + 40, frames);

            Assert.Single(frames);
            Assert.True(parser.IsMidFrame);
            Assert.Equal(FrameHeader.Size + 40, parser.PartialBytes);
        }

        [Fact]
        public void HeaderOfANonEmptyFrameAloneLeavesParserMidFrame()
        {
            var parser = new FrameParser(1024);
            var frames = new List<Frame>();

            parser.Feed(Wire.Header(10, (byte)FrameType.Text), 0, FrameHeader.Size, frames);

            Assert.Empty(frames);
            Assert.True(parser.IsMidFrame);
            Assert.Equal(FrameHeader.Size, parser.PartialBytes);
        }

        [Theory]
        [InlineData(0x00)]
        [InlineData(0x04)]
        [InlineData(0x16)] // the first type after Request (0x14) and Reply (0x15)
        [InlineData(0x7F)]
        [InlineData(0xFF)]
        public void UnknownTypeByteIsAProtocolError(byte type)
        {
            var parser = new FrameParser(1024);
            var frames = new List<Frame>();
            byte[] header = Wire.Header(3, type);

            var e = Assert.Throws<IpcException>(() => parser.Feed(header, 0, header.Length, frames));

            Assert.Equal(IpcErrorKind.ProtocolError, e.Kind);
            Assert.Empty(frames);
        }

        [Fact]
        public void HttpRequestIsAProtocolErrorNotATooLargeMessage()
        {
            // "GET /" reads as a ~540 MB length with type '/': the type is checked first.
            byte[] http = Wire.Text("GET / HTTP/1.1\r\n\r\n");
            var parser = new FrameParser(FrameHeader.DefaultMaxMessageSize);

            var e = Assert.Throws<IpcException>(() => parser.Feed(http, 0, http.Length, new List<Frame>()));

            Assert.Equal(IpcErrorKind.ProtocolError, e.Kind);
        }

        [Fact]
        public void FramesCompleteBeforeABadHeaderAreStillReturned()
        {
            byte[] stream = Wire.Concat(
                Wire.Frame(FrameType.Text, Wire.Text("one")),
                Wire.Frame(FrameType.Text, Wire.Text("two")),
                Wire.Header(1, 0x7F),
                new byte[] { 0 });
            var parser = new FrameParser(1024);
            var frames = new List<Frame>();

            var e = Assert.Throws<IpcException>(() => parser.Feed(stream, 0, stream.Length, frames));

            Assert.Equal(IpcErrorKind.ProtocolError, e.Kind);
            Assert.Equal(new[] { "one", "two" }, frames.Select(f => System.Text.Encoding.UTF8.GetString(f.Payload)));
        }

        [Fact]
        public void FramesCompleteBeforeATooLargeHeaderAreStillReturned()
        {
            byte[] stream = Wire.Concat(
                Wire.Frame(FrameType.Bytes, new byte[] { 9 }),
                Wire.Header(2048, (byte)FrameType.Bytes));
            var parser = new FrameParser(1024);
            var frames = new List<Frame>();

            var e = Assert.Throws<IpcException>(() => parser.Feed(stream, 0, stream.Length, frames));

            Assert.Equal(IpcErrorKind.MessageTooLarge, e.Kind);
            Assert.Equal(new byte[] { 9 }, Assert.Single(frames).Payload);
        }

        [Theory]
        [InlineData(200_000, 65_536)]
        [InlineData(3 * 1024 * 1024 + 7, 65_536)]
        [InlineData(3 * 1024 * 1024 + 7, 1_000_000)]
        public void DirectReadsIntoTheGrowingPayloadGiveTheSameFrameAsFeeding(int size, int readSize)
        {
            // The reader loop reads big payloads straight into the parser's buffer: DirectTarget + Advance.
            var payload = new byte[size];
            new Random(size).NextBytes(payload);
            byte[] wire = Wire.Concat(Wire.Frame(FrameType.Bytes, payload), Wire.Frame(FrameType.Text, new byte[] { 1, 2, 3 }));
            var parser = new FrameParser(8 * 1024 * 1024);
            var frames = new List<Frame>();
            int at = 0;
            int directReads = 0;
            while (at < wire.Length)
            {
                ArraySegment<byte> target = parser.DirectTarget(65_536);
                if (target.Count > 0)
                {
                    int n = Math.Min(Math.Min(target.Count, readSize), wire.Length - at);
                    Buffer.BlockCopy(wire, at, target.Array!, target.Offset, n); // a segment with a count has an array
                    parser.Advance(n, frames);
                    at += n;
                    directReads++;
                    continue;
                }
                int chunk = Math.Min(65_536, wire.Length - at);
                var buffer = new byte[chunk];
                Buffer.BlockCopy(wire, at, buffer, 0, chunk);
                parser.Feed(buffer, 0, chunk, frames);
                at += chunk;
            }

            Assert.True(directReads > 0, "the big payload was never read directly");
            Assert.Equal(2, frames.Count);
            Assert.Equal(payload, frames[0].Payload);
            Assert.Equal(new byte[] { 1, 2, 3 }, frames[1].Payload);
            Assert.False(parser.IsMidFrame);
        }

        [Fact]
        public void DirectTargetIsEmptyOutsideALargePayload()
        {
            var parser = new FrameParser(1 << 20);
            Assert.Equal(0, parser.DirectTarget(1).Count);
            byte[] header = Wire.Header(100, (byte)FrameType.Bytes);
            parser.Feed(header, 0, header.Length, new List<Frame>());
            Assert.Equal(0, parser.DirectTarget(65_536).Count); // only 100 bytes to come
            Assert.Equal(100, parser.DirectTarget(1).Count);
        }

        [Fact]
        public void WithRequireHelloFirstADataFrameBeforeTheHelloIsRejectedAtItsHeader()
        {
            // Otherwise a peer could make a connection buffer a whole message before any handshake.
            var parser = new FrameParser(64 * 1024 * 1024) { RequireHelloFirst = true };
            byte[] header = Wire.Header(64 * 1024 * 1024, (byte)FrameType.Bytes);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<IpcException>(() => parser.Feed(header, 0, header.Length, new List<Frame>()));
            Assert.Equal(IpcErrorKind.ProtocolError, e.Kind);
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1024 * 1024);
        }

        [Fact]
        public void WithRequireHelloFirstDataFramesFollowTheHello()
        {
            var parser = new FrameParser(1024) { RequireHelloFirst = true };
            byte[] wire = Wire.Concat(Wire.HelloFrame(), Wire.Frame(FrameType.Text, new byte[] { 65 }));
            var frames = new List<Frame>();
            parser.Feed(wire, 0, wire.Length, frames);
            Assert.Equal(new[] { FrameType.Hello, FrameType.Text }, frames.ConvertAll(f => f.Type).ToArray());
        }
    }
}
