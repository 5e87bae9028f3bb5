using System.Threading;

namespace PsIpc.Transport.Channels
{
    /// <summary>Monitor.Wait on a gate that also wakes for a cancellation token.</summary>
    internal static class GateWait
    {
        /// <summary>
        /// Call with the lock on <paramref name="gate"/> held. Waits for a pulse, the deadline or cancellation.
        /// Returns false when the deadline had passed; throws OperationCanceledException when cancelled.
        /// </summary>
        public static bool Wait(object gate, Deadline deadline, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int ms = deadline.RemainingMilliseconds;
            if (ms == 0) return false;
            if (!cancellationToken.CanBeCanceled)
            {
                Monitor.Wait(gate, ms);
                return true;
            }
            CancellationTokenRegistration registration = cancellationToken.Register(PulseAll, gate);
            try
            {
                // Cancelled between the check above and Register: the callback already ran (pulsing nobody).
                // Cancelled after this check: the callback needs the lock, which Wait releases, so it wakes us.
                if (!cancellationToken.IsCancellationRequested) Monitor.Wait(gate, ms);
            }
            finally
            {
                // Disposing waits for a running callback, and the callback needs the lock: release it first.
                Monitor.Exit(gate);
                try { registration.Dispose(); }
                finally { Monitor.Enter(gate); }
            }
            cancellationToken.ThrowIfCancellationRequested();
            return true;
        }

        private static void PulseAll(object gate)
        {
            lock (gate) Monitor.PulseAll(gate);
        }
    }
}
