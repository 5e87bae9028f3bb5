using System;
using System.Collections.Generic;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace PsIpc.Transport.Framing
{
    /// <summary>
    /// Where the arrays of received payloads come from. Three things keep a large message cheap:
    /// <list type="bullet">
    /// <item>An array that the payload fills completely is allocated without zeroing (GC.AllocateUninitializedArray,
    /// where the runtime has it: .NET 5 and later; Windows PowerShell's .NET Framework zeroes). A 1 MiB array lands on
    /// the large object heap, where zeroing costs about as much as the copy from the kernel.</item>
    /// <item>Arrays that a caller gave back after copying the payload into its own buffer or stream
    /// (IpcChannel.ReceiveInto, ReceiveTo) are kept, by exact length, for the next message of that length, so a
    /// stream of equal chunks into a caller's buffer allocates nothing on the large object heap (each such
    /// allocation counts towards the next gen2 collection). An array handed to a user is never taken back:
    /// only arrays this class made are accepted, and only from a receive that copied them out.</item>
    /// <item>Chunks of 64 KiB hold the start of a payload while it is too early to allocate the whole message
    /// (see FrameParser): they never leave the parser.</item>
    /// </list>
    /// </summary>
    internal static class PayloadArrays
    {
        /// <summary>Arrays from this size up live on the large object heap: smaller ones are not worth keeping.</summary>
        internal const int PooledMinimum = 85000;

        /// <summary>The largest array kept for reuse, and what all kept arrays may hold together.</summary>
        internal const int PooledMaximum = 16 * 1024 * 1024;
        internal const long RetainedMaximum = 32L * 1024 * 1024;
        private const int RetainedCount = 16;

        // Below this the runtime zeroes anyway (small arrays come from memory it cleared in advance).
        private const int UninitializedMinimum = 2048;

        internal const int ChunkSize = 64 * 1024;
        private const int TouchStride = 4096; // the smallest page size: every page gets at least one write
        private const int RetainedChunks = 64; // 4 MiB

        private static readonly Func<int, bool, byte[]>? s_uninitialized = FindUninitializedAllocator();
        private static readonly ConditionalWeakTable<byte[], object> s_ours = new ConditionalWeakTable<byte[], object>();
        private static readonly object s_mark = new object();
        private static readonly object s_gate = new object();
        private static readonly List<byte[]> s_kept = new List<byte[]>(RetainedCount);
        private static long s_keptBytes;
        private static readonly Stack<byte[]> s_chunks = new Stack<byte[]>(RetainedChunks);

        /// <summary>True when arrays are allocated without zeroing (what the xUnit tests report).</summary>
        internal static bool SkipsZeroing => s_uninitialized != null;

        /// <summary>Bytes held for reuse right now.</summary>
        internal static long KeptBytes
        {
            get { lock (s_gate) return s_keptBytes; }
        }

        /// <summary>An array of exactly <paramref name="length"/> bytes that the caller fills completely; its old content is undefined.</summary>
        public static byte[] Rent(int length)
        {
            if (length < UninitializedMinimum) return length == 0 ? Array.Empty<byte>() : new byte[length];
            if (length < PooledMinimum) return AllocateUninitialized(length);
            if (length <= PooledMaximum)
            {
                lock (s_gate)
                {
                    for (int i = s_kept.Count - 1; i >= 0; i--)
                    {
                        byte[] kept = s_kept[i];
                        if (kept.Length != length) continue;
                        s_kept.RemoveAt(i);
                        s_keptBytes -= length;
                        return kept;
                    }
                }
            }
            byte[] array = AllocateUninitialized(length);
            if (length <= PooledMaximum) s_ours.Add(array, s_mark);
            return array;
        }

        /// <summary>
        /// As <see cref="Rent"/>, with every page of the array touched: the memory of a new large array is mapped in on
        /// its first touch, a page fault per page, which costs more than copying a payload into it. A caller that copies
        /// into the array while holding a lock that others wait for takes those faults here, before the lock.
        /// </summary>
        public static byte[] RentTouched(int length)
        {
            byte[] array = Rent(length);
            for (int i = 0; i < array.Length; i += TouchStride) array[i] = 0;
            return array;
        }

        /// <summary>
        /// Takes back an array whose payload was copied out and that nobody else holds (the message it came in
        /// was consumed by a receive into the caller's buffer). Arrays this class did not make are ignored.
        /// </summary>
        public static void Return(byte[] array)
        {
            if (array.Length < PooledMinimum || array.Length > PooledMaximum || !s_ours.TryGetValue(array, out _)) return;
            lock (s_gate)
            {
                foreach (byte[] kept in s_kept)
                {
                    if (ReferenceEquals(kept, array)) return; // given back twice: keep it once
                }
                // The oldest go first: a stream of one chunk size keeps the newest arrays.
                while (s_kept.Count > 0 && (s_kept.Count >= RetainedCount || s_keptBytes + array.Length > RetainedMaximum))
                {
                    s_keptBytes -= s_kept[0].Length;
                    s_kept.RemoveAt(0);
                }
                s_kept.Add(array);
                s_keptBytes += array.Length;
            }
        }

        /// <summary>An array the caller fills completely (a frame's payload), not zeroed where the runtime allows.</summary>
        public static byte[] AllocateUninitialized(int length)
        {
            if (length == 0) return Array.Empty<byte>();
            try
            {
                return s_uninitialized != null && length >= UninitializedMinimum ? s_uninitialized(length, false) : new byte[length];
            }
            catch (OutOfMemoryException e)
            {
                throw new IpcException(IpcErrorKind.MessageTooLarge, $"A {length}-byte message does not fit in this process's memory.", null, e);
            }
        }

        /// <summary>A 64 KiB staging chunk (contents undefined).</summary>
        public static byte[] RentChunk()
        {
            lock (s_gate)
            {
                if (s_chunks.Count > 0) return s_chunks.Pop();
            }
            return new byte[ChunkSize];
        }

        public static void ReturnChunk(byte[] chunk)
        {
            lock (s_gate)
            {
                if (s_chunks.Count < RetainedChunks) s_chunks.Push(chunk);
            }
        }

        // GC.AllocateUninitializedArray<T>(int, bool) exists from .NET 5 on; this assembly targets netstandard2.0.
        private static Func<int, bool, byte[]>? FindUninitializedAllocator()
        {
            try
            {
                MethodInfo? method = typeof(GC).GetMethod("AllocateUninitializedArray", BindingFlags.Public | BindingFlags.Static);
                if (method == null || !method.IsGenericMethodDefinition) return null;
                return (Func<int, bool, byte[]>)method.MakeGenericMethod(typeof(byte)).CreateDelegate(typeof(Func<int, bool, byte[]>));
            }
            catch (Exception e) when (e is ArgumentException || e is InvalidOperationException || e is NotSupportedException || e is MemberAccessException)
            {
                return null;
            }
        }
    }
}
