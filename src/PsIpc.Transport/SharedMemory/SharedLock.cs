using System.Threading;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// A cross-process lock in a 32-bit word of shared memory: the word holds the pid of the holder (0 when free).
    /// Waiters sleep on the word (futex) in slices of <see cref="SliceMilliseconds"/>; after each slice they check
    /// that the holder still exists, and take over the lock of a holder that died (kill -9) instead of waiting
    /// forever. The caller learns of the takeover and repairs what the dead holder may have left half-done.
    /// Not reentrant. Two threads of one process exclude each other like two processes.
    /// </summary>
    internal unsafe struct SharedLock
    {
        public const int SliceMilliseconds = 50;
        private const int SpinCount = 100;

        private readonly SharedMapping _mapping;
        private readonly int* _word;
        private readonly int* _waiters;
        private readonly int* _recoveries;
        private readonly int _pid;

        public SharedLock(SharedMapping mapping, int pid)
        {
            byte* header = mapping.Pointer;
            _mapping = mapping;
            _word = (int*)(header + SegmentHeader.LockOffset);
            _waiters = (int*)(header + SegmentHeader.LockWaitersOffset);
            _recoveries = (int*)(header + SegmentHeader.LockRecoveriesOffset);
            _pid = pid;
        }

        public int Holder => Volatile.Read(ref *_word);

        public int Recoveries => Volatile.Read(ref *_recoveries);

        /// <summary>Takes the lock if it is free right now: one compare-and-swap, no wait, no allocation.</summary>
        public bool TryEnterNow() => Interlocked.CompareExchange(ref *_word, _pid, 0) == 0;

        /// <summary>
        /// Takes the lock. False when the deadline passed first; throws OperationCanceledException when cancelled.
        /// <paramref name="recovered"/> is true when the lock was taken over from a holder that no longer exists.
        /// </summary>
        public bool TryEnter(Deadline deadline, CancellationToken cancellationToken, out bool recovered)
        {
            recovered = false;
            if (Interlocked.CompareExchange(ref *_word, _pid, 0) == 0) return true;
            for (int i = 0; i < SpinCount; i++)
            {
                if (i < 10) Thread.SpinWait(20); else Thread.Yield();
                if (Volatile.Read(ref *_word) == 0 && Interlocked.CompareExchange(ref *_word, _pid, 0) == 0) return true;
            }
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // A wait can be long: the file may have been truncated meanwhile (touching it would be SIGBUS).
                _mapping.EnsureIntact();
                int holder = Volatile.Read(ref *_word);
                if (holder == 0)
                {
                    if (Interlocked.CompareExchange(ref *_word, _pid, 0) == 0) return true;
                    continue;
                }
                if (holder != _pid && !ProcessLiveness.IsAlive(holder))
                {
                    if (Interlocked.CompareExchange(ref *_word, _pid, holder) == holder)
                    {
                        Interlocked.Increment(ref *_recoveries);
                        recovered = true;
                        return true;
                    }
                    continue;
                }
                int remaining = deadline.RemainingMilliseconds;
                if (remaining == 0) return false;
                int slice = remaining < 0 || remaining > SliceMilliseconds ? SliceMilliseconds : remaining;
                Interlocked.Increment(ref *_waiters);
                try
                {
                    SharedWait.Wait(_word, holder, slice, cancellationToken, _mapping);
                }
                finally
                {
                    if (_mapping.IsIntact) Interlocked.Decrement(ref *_waiters);
                }
            }
        }

        public void Exit()
        {
            Interlocked.Exchange(ref *_word, 0);
            if (Volatile.Read(ref *_waiters) > 0) SharedWait.WakeOne(_word);
        }
    }
}
