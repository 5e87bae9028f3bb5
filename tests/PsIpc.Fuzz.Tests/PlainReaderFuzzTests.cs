using System;
using System.Collections.Generic;
using System.Linq;
using CsCheck;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Framing;
using Xunit;
using Xunit.Abstractions;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// The Line and Raw readers (Connections/PlainReaders.cs) fed random, mutated and valid streams split at random
    /// points, with tiny and large maximum message sizes, with and without a receive budget.
    /// </summary>
    public sealed class PlainReaderFuzzTests
    {
        public const string LineTarget = "line-reader";
        public const string RawTarget = "raw-reader";

        private static readonly IpcErrorKind[] LineDocumented = { IpcErrorKind.MessageTooLarge, IpcErrorKind.ServerBusy };

        private readonly ITestOutputHelper _output;

        public PlainReaderFuzzTests(ITestOutputHelper output) => _output = output;

        /// <param name="BudgetLimit">0: no receive budget.</param>
        public sealed record Case(byte[] Stream, int Max, long BudgetLimit, int[] Splits)
        {
            public override string ToString() => $"max {Max}, budget {BudgetLimit}, splits [{string.Join(",", Splits)}], {Stream.Length} bytes {Fuzz.Hex(Stream)}";
        }

        private static readonly Gen<int> Maxes = Gen.OneOf(0, 1, 2, 7, 64, 1000, 65536, FrameHeader.DefaultMaxMessageSize);
        private static readonly Gen<long> Budgets = Gen.OneOf(0L, 0L, 50L, 1000L, 70000L, 1L << 40);

        /// <summary>Lines of text (some with \r\n, some long, some empty), sometimes without the last newline.</summary>
        internal static readonly Gen<byte[]> ValidLines = Gen.Select(
            Gen.Frequency((8, Gen.Byte[32, 126].Array[0, 40]), (1, Streams.Bulk(0, 3000).Select(b => b.Select(x => x == (byte)'\n' ? (byte)'.' : x).ToArray()))).Array[0, 10],
            Gen.Bool, Gen.Bool,
            (lines, crlf, lastOpen) =>
            {
                var all = new List<byte>();
                for (int i = 0; i < lines.Length; i++)
                {
                    all.AddRange(lines[i]);
                    if (i < lines.Length - 1 || !lastOpen)
                    {
                        if (crlf) all.Add((byte)'\r');
                        all.Add((byte)'\n');
                    }
                }
                return all.ToArray();
            });

        private static Gen<Case> CasesFor(string target, Gen<byte[]> valid)
        {
            IReadOnlyList<byte[]> seeds = Corpus.Seeds(target);
            Gen<byte[]> streams = Gen.Frequency((3, Streams.Random), (4, Streams.Mutated(seeds)), (3, valid), (3, Streams.Mutated(valid, seeds)));
            return Gen.Select(streams, Maxes, Budgets, Streams.Splits, (s, max, budget, splits) => new Case(s, max, budget, splits));
        }

        internal static IEnumerable<Case> Replays(byte[] stream)
        {
            foreach (int max in new[] { 0, 7, 1000, FrameHeader.DefaultMaxMessageSize })
            foreach (long budget in new[] { 0L, 50L, 1L << 40 })
            foreach (int[] split in new[] { new[] { int.MaxValue }, new[] { 1 }, new[] { 3, 7, 250 } })
                yield return new Case(stream, max, budget, split);
        }

        // ---- Line ----

        [Fact]
        public void AnyStreamGivesItsLinesOrMessageTooLargeAndNoBufferPassesTheMaximum()
        {
            Fuzz.Run(LineTarget, CasesFor(LineTarget, ValidLines), CheckLine, c => c.Stream, c => c.ToString(), _output);
        }

        /// <summary>docs/protocol.md 11: a line is a message without its \n (and a \r before it); a last line without \n counts at the end.</summary>
        private static (List<byte[]> Lines, bool TooLong) LineModel(byte[] s, int max)
        {
            var lines = new List<byte[]>();
            int start = 0;
            for (int i = 0; i <= s.Length; i++)
            {
                bool end = i == s.Length;
                if (!end && s[i] != (byte)'\n') continue;
                int length = i - start;
                if (length > max) return (lines, true);
                if (!end || length > 0)
                {
                    if (length > 0 && s[i - 1] == (byte)'\r') length--;
                    lines.Add(s.AsSpan(start, length).ToArray());
                }
                start = i + 1;
            }
            return (lines, false);
        }

        internal static void CheckLine(Case c)
        {
            int max = Math.Max(1, c.Max);
            ReceiveBudget? budget = c.BudgetLimit > 0 ? new ReceiveBudget(c.BudgetLimit) : null;
            var reader = new LineReader(new ChannelOptions { MaxMessageSize = c.Max, ReceiveBudget = budget });
            var frames = new List<Frame>();
            Exception? error = null;
            long held = 0;
            int seen = 0;
            try
            {
                foreach (var (offset, count) in Streams.Chunks(c.Stream.Length, c.Splits))
                {
                    reader.Feed(c.Stream, offset, count, frames);
                    for (; seen < frames.Count; seen++) held += frames[seen].BudgetHeld;
                    long capacity = reader.BufferCapacity;
                    Fuzz.Expect(capacity <= max, () => $"the line reader holds a {capacity}-byte buffer with a maximum of {max}");
                    if (budget != null)
                    {
                        long counted = budget.Used - held;
                        Fuzz.Expect(budget.Used <= budget.Limit, () => $"the budget holds {budget.Used} of {budget.Limit}");
                        Fuzz.Expect(counted == capacity, () => $"the budget counts {counted} bytes for a {capacity}-byte buffer");
                    }
                }
                reader.Finish(frames);
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Fuzz.AssertDocumented(e, LineDocumented, "LineReader");
                error = e;
            }
            foreach (Frame f in frames)
            {
                Assert.Equal(FrameType.Text, f.Type);
                Fuzz.Expect(f.Payload.Length <= max, () => $"a {f.Payload.Length}-byte line passed a maximum of {max}");
                Fuzz.Expect(f.BudgetHeld <= f.Payload.Length, () => $"a {f.Payload.Length}-byte line holds {f.BudgetHeld} of the budget");
            }
            var (lines, tooLong) = LineModel(c.Stream, max);
            var kind = (error as IpcException)?.Kind;
            bool busy = kind == IpcErrorKind.ServerBusy;
            Fuzz.Outcome(kind?.ToString() ?? (frames.Count > 0 ? "lines" : "nothing"));
            Fuzz.Expect(busy || kind == (tooLong ? IpcErrorKind.MessageTooLarge : null),
                () => $"the reader reported {kind?.ToString() ?? "no error"}; the stream calls for {(tooLong ? "MessageTooLarge" : "none")}");
            Fuzz.Expect(!busy || budget != null, () => "ServerBusy without a budget");
            Fuzz.Expect(busy ? frames.Count <= lines.Count : frames.Count == lines.Count, () => $"{frames.Count} lines, expected {lines.Count}");
            for (int i = 0; i < frames.Count; i++)
            {
                int index = i;
                Fuzz.Expect(frames[i].Payload.AsSpan().SequenceEqual(lines[i]), () => $"line {index} is {Fuzz.Hex(frames[index].Payload)}, expected {Fuzz.Hex(lines[index])}");
            }
            reader.ReleaseBudget();
            if (budget != null)
            {
                foreach (Frame f in frames) budget.Release(f.BudgetHeld);
                Fuzz.Expect(budget.Used == 0, () => $"{budget.Used} bytes of the budget were never given back");
            }
        }

        // ---- Raw ----

        [Fact]
        public void AnyStreamArrivesWholeInMessagesOfAtMostTheMaximum()
        {
            Fuzz.Run(RawTarget, CasesFor(RawTarget, Streams.Random), CheckRaw, c => c.Stream, c => c.ToString(), _output);
        }

        internal static void CheckRaw(Case c)
        {
            int max = Math.Max(1, c.Max);
            var reader = new RawReader(c.Max);
            var frames = new List<Frame>();
            int expectedCount = 0;
            foreach (var (offset, count) in Streams.Chunks(c.Stream.Length, c.Splits))
            {
                try
                {
                    reader.Feed(c.Stream, offset, count, frames);
                }
                catch (Exception e)
                {
                    throw new Xunit.Sdk.XunitException($"RawReader threw {e.GetType().Name}: {e.Message}");
                }
                expectedCount += (count + max - 1) / max;
                Assert.False(reader.IsMidFrame);
            }
            reader.Finish(frames);
            Fuzz.Outcome(frames.Count == 0 ? "nothing" : frames.Count == 1 ? "one message" : "several messages");
            Assert.Equal(expectedCount, frames.Count);
            Fuzz.Expect(frames.All(f => f.Type == FrameType.Bytes && f.Payload.Length <= max && f.Payload.Length > 0 && f.BudgetHeld == 0),
                () => $"a Raw message is empty, larger than {max} or holds budget");
            byte[] joined = frames.SelectMany(f => f.Payload).ToArray();
            Fuzz.Expect(joined.AsSpan().SequenceEqual(c.Stream), () => "the messages joined are not the stream");
        }
    }
}
