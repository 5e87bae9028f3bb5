using System;
using System.Collections.Generic;
using System.Linq;
using CsCheck;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// Byte streams for the targets: random ones, seeds from the corpus mutated the way coverage-guided fuzzers
    /// mutate (bit flips, interesting values, arithmetic, inserts, deletes, splices), and the split points at
    /// which a stream reaches a reader. Every choice is a CsCheck generator, so a failure shrinks.
    /// </summary>
    internal static class Streams
    {
        /// <summary>Boundary values of the sizes and positions the decoders read (AFL's "interesting values", widened to 64 bits).</summary>
        public static readonly long[] Interesting =
        {
            0, 1, 2, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 100, 127, 128, 255, 256, 1000, 1024, 4095, 4096, 4097,
            32767, 32768, 65535, 65536, 65537, 1 << 20, 1 << 24, (1 << 26) + 1, int.MaxValue - 64, int.MaxValue, 1L << 31,
            uint.MaxValue - 1, uint.MaxValue, 1L << 32, 1L << 40, (1L << 40) + 1, 1L << 48, 1L << 62, long.MaxValue,
            -1, -2, -8, int.MinValue, long.MinValue,
        };

        /// <summary>An interesting value, sometimes nudged by a small amount (as AFL's arithmetic stage does), or any value.</summary>
        public static readonly Gen<long> Value = Gen.Frequency(
            (6, Gen.OneOf(Interesting)),
            (4, Gen.Select(Gen.OneOf(Interesting), Gen.Long[-35, 35], (v, d) => unchecked(v + d))),
            (2, Gen.Long[0, 300]),
            (1, Gen.Long));

        /// <summary>
        /// <paramref name="min"/> to <paramref name="max"/> bytes of a seeded generator: as random as Gen.Byte.Array and
        /// much cheaper for long streams (the length still shrinks).
        /// </summary>
        public static Gen<byte[]> Bulk(int min, int max) => Gen.Select(Gen.Int[min, max], Gen.ULong, (n, seed) =>
        {
            var bytes = new byte[n];
            Span<ulong> words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(bytes.AsSpan());
            for (int i = 0; i < words.Length; i++) words[i] = SplitMix(ref seed);
            for (int i = words.Length * 8; i < n; i++) bytes[i] = (byte)SplitMix(ref seed);
            return bytes;
        });

        private static ulong SplitMix(ref ulong state)
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public static readonly Gen<byte[]> Random = Gen.Frequency(
            (6, Gen.Byte.Array[0, 64]),
            (3, Bulk(0, 600)),
            (1, Bulk(0, 5000)));

        /// <summary>Chunk sizes in which a stream is handed to a reader, used in turn: one byte at a time, small reads, large ones.</summary>
        public static readonly Gen<int[]> Splits = Gen.Frequency(
            (3, Gen.Int[1, 8].Array[1, 6]),
            (4, Gen.Int[1, 300].Array[1, 6]),
            (2, Gen.Int[1, 70000].Array[1, 3]));

        public static IEnumerable<(int Offset, int Count)> Chunks(int length, int[] splits)
        {
            int at = 0;
            for (int i = 0; at < length; i++)
            {
                int n = Math.Min(Math.Max(1, splits[i % splits.Length]), length - at);
                yield return (at, n);
                at += n;
            }
        }

        /// <summary>One mutation; positions and lengths are taken modulo the stream's length when applied.</summary>
        public readonly record struct Mutation(int Kind, int Position, int Length, long Value, byte[] Bytes)
        {
            public override string ToString() => $"{KindNames[Kind % KindNames.Length]}@{Position}/{Length}={Value}";
        }

        private static readonly string[] KindNames =
        {
            "flip", "byte", "u32", "u64", "add32", "insert", "delete", "duplicate", "truncate", "append", "splice",
        };

        public static readonly Gen<Mutation> AnyMutation =
            Gen.Select(Gen.Int[0, KindNames.Length - 1], Gen.Int[0, int.MaxValue], Gen.Int[0, 64], Value, Gen.Byte.Array[1, 24],
                (k, p, l, v, b) => new Mutation(k, p, l, v, b));

        /// <summary>A seed (from <paramref name="seeds"/>) with one to eight mutations, another seed spliced in by some.</summary>
        public static Gen<byte[]> Mutated(IReadOnlyList<byte[]> seeds) =>
            Mutated(Gen.Int[0, seeds.Count - 1].Select(i => seeds[i]), seeds);

        public static Gen<byte[]> Mutated(Gen<byte[]> bases, IReadOnlyList<byte[]> others) =>
            Gen.Select(bases, Gen.Int[0, Math.Max(0, others.Count - 1)], AnyMutation.Array[1, 8],
                (seed, other, mutations) => Apply(seed, others.Count == 0 ? seed : others[other], mutations));

        public static byte[] Apply(byte[] seed, byte[] other, Mutation[] mutations)
        {
            var b = new List<byte>(seed);
            foreach (Mutation m in mutations)
            {
                int n = b.Count;
                int at = n == 0 ? 0 : m.Position % n;
                switch (m.Kind)
                {
                    case 0:
                        if (n > 0) b[at] ^= (byte)(1 << (int)(m.Value & 7));
                        break;
                    case 1:
                        if (n > 0) b[at] = (byte)m.Value;
                        break;
                    case 2:
                        Write(b, at, m.Value, 4);
                        break;
                    case 3:
                        Write(b, at, m.Value, 8);
                        break;
                    case 4:
                        if (n >= 4)
                        {
                            at = Math.Min(at, n - 4);
                            uint u = (uint)(b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24);
                            Write(b, at, unchecked(u + (m.Value % 36)), 4);
                        }
                        break;
                    case 5:
                        b.InsertRange(at, m.Bytes);
                        break;
                    case 6:
                        if (n > 0) b.RemoveRange(at, Math.Min(m.Length + 1, n - at));
                        break;
                    case 7:
                        if (n > 0 && n < 100_000)
                        {
                            var range = b.GetRange(at, Math.Min(m.Length + 1, n - at));
                            b.InsertRange((int)((ulong)m.Value % (ulong)(n + 1)), range);
                        }
                        break;
                    case 8:
                        if (n > 0) b.RemoveRange(at, n - at);
                        break;
                    case 9:
                        b.AddRange(m.Bytes);
                        break;
                    default:
                        if (other.Length > 0 && n < 100_000)
                        {
                            int from = m.Position % other.Length;
                            b.InsertRange(at, other.Skip(from).Take(m.Length + 1));
                        }
                        break;
                }
            }
            return b.ToArray();
        }

        private static void Write(List<byte> b, int at, long value, int size)
        {
            if (b.Count < size) return;
            at = Math.Min(at, b.Count - size);
            for (int i = 0; i < size; i++) b[at + i] = (byte)(value >> (8 * i));
        }
    }
}
