using System;
using System.Threading;
using Xunit;

namespace PsIpc.Transport.Tests
{
    public class DeadlineTests
    {
        [Fact]
        public void InfiniteNeverExpires()
        {
            Deadline d = Deadline.Infinite;

            Assert.True(d.IsInfinite);
            Assert.False(d.HasExpired);
            Assert.Equal(Timeout.Infinite, d.RemainingMilliseconds);
        }

        [Fact]
        public void DefaultDeadlineIsAlreadyExpired()
        {
            // default(Deadline) ends at tick 0: a forgotten initialisation polls rather than hangs.
            Deadline d = default;

            Assert.False(d.IsInfinite);
            Assert.True(d.HasExpired);
        }

        [Fact]
        public void AfterNullIsInfinite()
        {
            Deadline d = Deadline.After(null);

            Assert.True(d.IsInfinite);
            Assert.Equal(Timeout.Infinite, d.RemainingMilliseconds);
        }

        [Fact]
        public void AfterInfiniteTimeSpanIsInfinite()
        {
            Assert.True(Deadline.After(Timeout.InfiniteTimeSpan).IsInfinite);
        }

        [Fact]
        public void AfterZeroHasExpiredAtOnce()
        {
            Deadline d = Deadline.After(TimeSpan.Zero);

            Assert.False(d.IsInfinite);
            Assert.True(d.HasExpired);
            Assert.Equal(0, d.RemainingMilliseconds);
        }

        [Fact]
        public void AfterNegativeHasExpiredAtOnce()
        {
            Deadline d = Deadline.After(TimeSpan.FromSeconds(-5));

            Assert.True(d.HasExpired);
            Assert.Equal(0, d.RemainingMilliseconds);
        }

        [Fact]
        public void RemainingMillisecondsIsPositiveAndNoMoreThanTheTimeout()
        {
            Deadline d = Deadline.After(TimeSpan.FromHours(1));

            int left = d.RemainingMilliseconds;

            Assert.False(d.HasExpired);
            Assert.False(d.IsInfinite);
            Assert.InRange(left, 1, 3600 * 1000);
        }

        [Fact]
        public void RemainingMillisecondsCountsDownFromTheTimeout()
        {
            Deadline d = Deadline.After(TimeSpan.FromDays(1));

            // Upper bound exact; the lower one leaves a minute for a descheduled test thread.
            Assert.InRange(d.RemainingMilliseconds, 86_400_000 - 60_000, 86_400_000);
        }

        [Fact]
        public void RemainingMillisecondsNeverExceedsWhatMonitorWaitAccepts()
        {
            Deadline d = Deadline.After(TimeSpan.FromDays(100 * 365));

            Assert.False(d.HasExpired);
            Assert.InRange(d.RemainingMilliseconds, 1, int.MaxValue - 1);
        }

        [Fact]
        public void TimeoutTooLongForTheClockIsInfiniteNotExpired()
        {
            // now + seconds * Stopwatch.Frequency (1e9 on Linux) overflows beyond ~292 years; it once wrapped
            // into the past, so a caller asking to wait "practically forever" timed out at once.
            Deadline max = Deadline.After(TimeSpan.MaxValue);
            Deadline longer = Deadline.After(TimeSpan.FromSeconds(1e10));

            Assert.False(max.HasExpired);
            Assert.False(longer.HasExpired);
            Assert.NotEqual(0, max.RemainingMilliseconds);
            Assert.NotEqual(0, longer.RemainingMilliseconds);
        }

        [Fact]
        public void ShortDeadlineExpires()
        {
            Deadline d = Deadline.After(TimeSpan.FromMilliseconds(1));

            SpinWait.SpinUntil(() => d.HasExpired, Wire.Patience);

            Assert.True(d.HasExpired);
            Assert.Equal(0, d.RemainingMilliseconds);
        }
    }
}
