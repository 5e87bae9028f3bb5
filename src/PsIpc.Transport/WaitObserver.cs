using System;

namespace PsIpc.Transport
{
    /// <summary>
    /// Lets the caller of a blocking transport call hear, on its own thread, that the call is still waiting (for
    /// room in a full queue, for a segment's lock, for a broker's confirms), so that a cmdlet can show progress from
    /// the pipeline thread while the transport waits there. The waits themselves do not change: they keep their
    /// deadline, so a send that times out is still one timeout (a broadcast is never cut into slices that could
    /// send a message twice); the observer is only called between the slices of the wait, with no lock held.
    /// A thread without an observer pays one thread-static read per wait, nothing per message.
    /// </summary>
    public static class WaitObserver
    {
        /// <summary>How often an observed wait wakes up to call its observer.</summary>
        public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

        [ThreadStatic]
        private static Action? s_observer;

        /// <summary>
        /// Calls <paramref name="observer"/> on this thread between the slices of every transport wait made on it
        /// until the scope is disposed. The observer must not throw and must not call into the waiting channel.
        /// </summary>
        public static Scope Observe(Action observer)
        {
            if (observer == null) throw new ArgumentNullException(nameof(observer));
            Action? previous = s_observer;
            s_observer = observer;
            return new Scope(previous);
        }

        /// <summary>True when a caller on this thread wants to hear of waits.</summary>
        public static bool IsObserved => s_observer != null;

        /// <summary>
        /// The deadline of the next slice of a wait: <paramref name="deadline"/> itself when nobody observes this
        /// thread, otherwise at most <see cref="Interval"/> away. A wait loop waits until the slice, then (when its
        /// own deadline has not passed) calls <see cref="Waiting"/> outside its locks and waits again.
        /// </summary>
        public static Deadline Slice(Deadline deadline) =>
            s_observer == null ? deadline : Deadline.Earliest(deadline, Deadline.After(Interval));

        /// <summary>Tells this thread's observer that a wait goes on. Call it with no lock held.</summary>
        public static void Waiting() => s_observer?.Invoke();

        /// <summary>Restores the observer that was there before <see cref="Observe"/>.</summary>
        public readonly struct Scope : IDisposable
        {
            private readonly Action? _previous;

            internal Scope(Action? previous) => _previous = previous;

            public void Dispose() => s_observer = _previous;
        }
    }
}
