using System;
using System.Diagnostics;
using System.Threading;

namespace PsIpc.Transport
{
    /// <summary>
    /// A point in time a wait must end by. Infinite when no timeout was given; "now" for a timeout of 0,
    /// which makes every wait a single poll.
    /// </summary>
    public readonly struct Deadline
    {
        private readonly long _endTicks; // Stopwatch ticks; long.MaxValue = never

        private Deadline(long endTicks) => _endTicks = endTicks;

        public static Deadline Infinite => new Deadline(long.MaxValue);

        public static Deadline After(TimeSpan? timeout)
        {
            if (timeout == null || timeout.Value == Timeout.InfiniteTimeSpan) return Infinite;
            if (timeout.Value <= TimeSpan.Zero) return new Deadline(Stopwatch.GetTimestamp());
            long now = Stopwatch.GetTimestamp();
            double ticks = timeout.Value.TotalSeconds * Stopwatch.Frequency;
            // Beyond what a long holds (about 292 years at 1 GHz ticks) is "never" for any caller.
            if (ticks >= long.MaxValue - now - 1) return Infinite;
            return new Deadline(now + (long)ticks);
        }

        public bool IsInfinite => _endTicks == long.MaxValue;

        /// <summary>Whichever of the two comes first.</summary>
        public static Deadline Earliest(Deadline a, Deadline b) => a._endTicks <= b._endTicks ? a : b;

        public bool HasExpired => !IsInfinite && Stopwatch.GetTimestamp() >= _endTicks;

        /// <summary>Milliseconds left for Monitor.Wait and friends: -1 for infinite, 0 when expired.</summary>
        public int RemainingMilliseconds
        {
            get
            {
                if (IsInfinite) return Timeout.Infinite;
                long left = _endTicks - Stopwatch.GetTimestamp();
                if (left <= 0) return 0;
                double ms = Math.Ceiling(left * 1000.0 / Stopwatch.Frequency);
                return ms >= int.MaxValue ? int.MaxValue - 1 : (int)ms;
            }
        }
    }
}
