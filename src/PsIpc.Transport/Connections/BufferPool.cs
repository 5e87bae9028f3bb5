using System.Collections.Concurrent;
using System.Threading;

namespace PsIpc.Transport.Connections
{
    /// <summary>
    /// The 64 KiB read and write buffers of connections that do their I/O on the thread pool. A connection takes one
    /// only while it reads or writes, so 10,000 idle connections hold none (a buffer each would be 640 MiB); at most
    /// <see cref="Kept"/> free buffers are kept. The core has no System.Buffers (ArrayPool) on netstandard2.0, and
    /// one size is all it needs. Arrays under 85,000 bytes: not on the large object heap.
    /// </summary>
    internal static class BufferPool
    {
        public const int Size = 64 * 1024;
        private const int Kept = 64;
        private static readonly ConcurrentQueue<byte[]> s_free = new ConcurrentQueue<byte[]>();
        private static int s_freeCount;

        public static byte[] Rent()
        {
            if (s_free.TryDequeue(out byte[]? buffer))
            {
                Interlocked.Decrement(ref s_freeCount);
                return buffer;
            }
            return new byte[Size];
        }

        public static void Return(byte[] buffer)
        {
            if (buffer.Length != Size) return;
            if (Interlocked.Increment(ref s_freeCount) > Kept)
            {
                Interlocked.Decrement(ref s_freeCount);
                return; // plenty kept: the collector takes this one
            }
            s_free.Enqueue(buffer);
        }
    }
}
