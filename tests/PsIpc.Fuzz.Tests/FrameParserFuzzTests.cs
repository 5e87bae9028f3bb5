using System;
using System.Collections.Generic;
using System.Linq;
using CsCheck;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using Xunit;
using Xunit.Abstractions;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// The PsIpc frame reader (Framing/FrameParser.cs) fed random, mutated and valid streams split at random points,
    /// through Feed and through DirectTarget/Advance as the connection's reader thread does, with and without a
    /// receive budget, with RequireHelloFirst on and off, with tiny and large maximum message sizes.
    /// </summary>
    public sealed class FrameParserFuzzTests
    {
        public const string Target = "frame-parser";

        private static readonly IpcErrorKind[] Documented = { IpcErrorKind.ProtocolError, IpcErrorKind.MessageTooLarge, IpcErrorKind.ServerBusy };

        private readonly ITestOutputHelper _output;

        public FrameParserFuzzTests(ITestOutputHelper output) => _output = output;

        /// <param name="BudgetLimit">0: no receive budget.</param>
        /// <param name="DirectMinimum">0: Feed only; else read into DirectTarget(DirectMinimum) whenever it offers room.</param>
        public sealed record Case(byte[] Stream, int Max, bool RequireHello, long BudgetLimit, int[] Splits, int DirectMinimum)
        {
            public override string ToString() =>
                $"max {Max}, hello first {RequireHello}, budget {BudgetLimit}, direct {DirectMinimum}, splits [{string.Join(",", Splits)}], {Stream.Length} bytes {Fuzz.Hex(Stream)}";
        }

        internal static readonly Gen<int> Maxes = Gen.OneOf(0, 1, 16, 100, 4096, 65536, 1 << 20, FrameHeader.DefaultMaxMessageSize, int.MaxValue);
        internal static readonly Gen<long> Budgets = Gen.OneOf(0L, 0L, 0L, 100L, 5000L, 70000L, 200_000L, 1L << 40);
        private static readonly Gen<int> DirectMinimums = Gen.OneOf(0, 0, 1, 16, 65536);

        internal static Gen<byte[]> StreamsFor(IReadOnlyList<byte[]> seeds) => Gen.Frequency(
            (3, Streams.Random),
            (4, Streams.Mutated(seeds)),
            (3, FrameModel.ValidStream),
            (3, Streams.Mutated(FrameModel.ValidStream, seeds)));

        [Fact]
        public void AnyStreamGivesTheModelsFramesOrADocumentedErrorWithinTheLimits()
        {
            Gen<Case> cases = Gen.Select(StreamsFor(Corpus.Seeds(Target)), Maxes, Gen.Bool, Budgets, Streams.Splits, DirectMinimums,
                (s, max, hello, budget, splits, direct) => new Case(s, max, hello, budget, splits, direct));
            Fuzz.Run(Target, cases, Check, c => c.Stream, c => c.ToString(), _output);
        }

        /// <summary>The configurations every corpus file is replayed with.</summary>
        internal static IEnumerable<Case> Replays(byte[] stream)
        {
            int[][] splits = { new[] { int.MaxValue }, new[] { 1 }, new[] { 3, 7, 1, 250 }, new[] { 5, 65536 } };
            foreach (int max in new[] { 0, 16, 4096, FrameHeader.DefaultMaxMessageSize, int.MaxValue })
            foreach (long budget in new[] { 0L, 100L, 70000L, 1L << 40 })
            foreach (int[] split in splits)
            foreach (int direct in new[] { 0, 1, 65536 })
            {
                yield return new Case(stream, max, true, budget, split, direct);
                if (direct == 0) yield return new Case(stream, max, false, budget, split, direct);
            }
        }

        internal static void Check(Case c)
        {
            FrameModel.Result model = FrameModel.Parse(c.Stream, c.Max, c.RequireHello);
            ReceiveBudget? budget = c.BudgetLimit > 0 ? new ReceiveBudget(c.BudgetLimit) : null;
            var parser = new FrameParser(c.Max) { RequireHelloFirst = c.RequireHello, Budget = budget };
            var frames = new List<Frame>();
            Exception? error = null;
            int largestChunk = c.Splits.Max();
            int seen = 0;
            long held = 0;
            try
            {
                foreach (var (offset, count) in Streams.Chunks(c.Stream.Length, c.Splits))
                {
                    int at = offset, left = count;
                    while (left > 0)
                    {
                        ArraySegment<byte> direct = c.DirectMinimum > 0 ? parser.DirectTarget(c.DirectMinimum) : default;
                        if (direct.Count > 0)
                        {
                            int n = Math.Min(left, direct.Count);
                            Buffer.BlockCopy(c.Stream, at, direct.Array!, direct.Offset, n);
                            parser.Advance(n, frames);
                            at += n;
                            left -= n;
                        }
                        else
                        {
                            parser.Feed(c.Stream, at, left, frames);
                            left = 0;
                        }
                        CheckBuffers(c, parser, budget, frames, ref seen, ref held, largestChunk);
                    }
                }
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Fuzz.AssertDocumented(e, Documented, "FrameParser");
                error = e;
            }

            var got = frames.Select(f => (f.Type, f.Payload)).ToList();
            var kind = (error as IpcException)?.Kind;
            Fuzz.Outcome(kind?.ToString() ?? (model.Partial > 0 ? "mid-frame" : "whole frames"));
            if (kind == IpcErrorKind.ServerBusy)
            {
                Assert.True(budget != null, "ServerBusy without a receive budget");
                Fuzz.Expect(FrameModel.SameFrames(model.Frames, got, prefixOnly: true),
                    () => $"before ServerBusy the parser gave {FrameModel.Describe(got)}; the stream holds {FrameModel.Describe(model.Frames)}");
            }
            else
            {
                Fuzz.Expect(kind == model.Error, () => $"the parser reported {kind?.ToString() ?? "no error"}; the stream calls for {model.Error?.ToString() ?? "none"}");
                Fuzz.Expect(FrameModel.SameFrames(model.Frames, got, prefixOnly: false),
                    () => $"the parser gave {FrameModel.Describe(got)}; the stream holds {FrameModel.Describe(model.Frames)}");
                if (error == null)
                {
                    Assert.Equal(model.Partial > 0, parser.IsMidFrame);
                    Assert.Equal(model.Partial, parser.PartialBytes);
                }
            }

            // Nothing leaks: once the connection ends and its messages are handed out, the budget is whole again.
            parser.ReleaseBudget();
            if (budget != null)
            {
                foreach (Frame f in frames) budget.Release(f.BudgetHeld);
                Fuzz.Expect(budget.Used == 0, () => $"{budget.Used} bytes of the budget were never given back");
            }
        }

        // No allocation beyond the configured maximum, every buffered byte counted against the budget, and memory
        // that grows with the bytes that came, not with what a header announced.
        private static void CheckBuffers(Case c, FrameParser parser, ReceiveBudget? budget, List<Frame> frames, ref int seen, ref long held, int largestChunk)
        {
            for (; seen < frames.Count; seen++)
            {
                Frame f = frames[seen];
                long limit = FrameTypes.IsData(f.Type) ? c.Max : FrameTypes.IsCorrelated(f.Type) ? c.Max + 5L : FrameModel.ControlLimit;
                Fuzz.Expect(f.Payload.Length <= limit, () => $"a {f.Type} frame of {f.Payload.Length} bytes passed a limit of {limit}");
                Fuzz.Expect(f.BudgetHeld == (budget == null ? 0 : f.Payload.Length), () => $"a frame of {f.Payload.Length} bytes holds {f.BudgetHeld} of the budget");
                held += f.BudgetHeld;
            }
            int capacity = parser.PayloadCapacity;
            int announced = parser.AnnouncedLength;
            Fuzz.Expect(capacity <= announced, () => $"a {capacity}-byte buffer for a {announced}-byte payload");
            Fuzz.Expect(announced <= Math.Max(c.Max + 5L, FrameModel.ControlLimit), () => $"a {announced}-byte payload was accepted with a maximum of {c.Max}");
            long filled = Math.Max(0, parser.PartialBytes - FrameHeader.Size);
            long step = budget == null ? FrameParser.InitialPayloadCapacity : FrameParser.BudgetedStep;
            long bound = Math.Max(step, 4 * filled + 2 * Math.Max(step, Math.Max(c.DirectMinimum, largestChunk)));
            Fuzz.Expect(capacity <= bound, () => $"a {capacity}-byte buffer after {filled} payload bytes (bound {bound})");
            if (budget != null)
            {
                Fuzz.Expect(budget.Used <= budget.Limit, () => $"the budget holds {budget.Used} of {budget.Limit}");
                long counted = budget.Used - held;
                Fuzz.Expect(counted == capacity, () => $"the budget counts {counted} bytes for a {capacity}-byte buffer");
            }
        }
    }
}
