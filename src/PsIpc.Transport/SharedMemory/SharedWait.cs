using System;
using System.Diagnostics;
using System.Threading;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// Sleeping until a word of shared memory changes: a futex on Linux; elsewhere (macOS, Windows: untested
    /// here) short sleeps that back off to 10 ms, because those systems have no cross-process wait on an address.
    /// </summary>
    internal static unsafe class SharedWait
    {
        /// <summary>Waits while *address == expected, up to <paramref name="milliseconds"/>; the caller re-checks its condition.</summary>
        /// <remarks>
        /// Without a futex the word is polled: then <paramref name="mapping"/>, when given, is checked between polls
        /// and the wait ends early when its file was truncated (the caller's own check then reports it).
        /// </remarks>
        public static void Wait(int* address, int expected, int milliseconds, CancellationToken cancellationToken, SharedMapping? mapping = null)
        {
            if (milliseconds == 0) return;
            if (Futex.IsAvailable)
            {
                // The kernel compares the word (and fails with EFAULT, no signal, when the file was truncated under
                // it): no read of it here, which keeps the unchecked touches of a sleeper to the minimum.
                if (!cancellationToken.CanBeCanceled)
                {
                    Futex.Wait(address, expected, milliseconds);
                    return;
                }
                // Ctrl+C wakes every sleeper on this word (in every process); the others find nothing changed and sleep again.
                using (cancellationToken.Register(state => Futex.Wake((int*)(IntPtr)state, int.MaxValue), (IntPtr)address))
                {
                    if (!cancellationToken.IsCancellationRequested) Futex.Wait(address, expected, milliseconds);
                }
                return;
            }
            if (Volatile.Read(ref *address) != expected) return;
            var sw = Stopwatch.StartNew();
            int sleep = 0;
            while (Volatile.Read(ref *address) == expected && !cancellationToken.IsCancellationRequested)
            {
                if (milliseconds >= 0 && sw.ElapsedMilliseconds >= milliseconds) return;
                Thread.Sleep(sleep);
                if (sleep < 10) sleep++;
                if (mapping != null && !mapping.IsIntact) return;
            }
        }

        public static void WakeAll(int* address)
        {
            if (Futex.IsAvailable) Futex.Wake(address, int.MaxValue);
        }

        public static void WakeOne(int* address)
        {
            if (Futex.IsAvailable) Futex.Wake(address, 1);
        }
    }
}
