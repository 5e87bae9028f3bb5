using System;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// WaitObserver: a caller showing progress hears of a long wait between its slices, on its own thread, with
    /// no lock held, while the wait keeps its own deadline and outcome.
    /// </summary>
    public class WaitObserverTests
    {
        [Fact]
        public void AnObservedWaitForRoomCallsTheObserverOnTheWaitingThreadThenTimesOutAtItsOwnDeadline()
        {
            var q = new BoundedQueue<int>(1, 100);
            Assert.True(q.TryAdd(1, 1, Deadline.After(TimeSpan.Zero), CancellationToken.None));
            int calls = 0;
            int waitingThread = Environment.CurrentManagedThreadId;
            bool sameThread = true;
            bool lockFree = true;
            bool added;
            using (WaitObserver.Observe(() =>
            {
                calls++;
                sameThread &= Environment.CurrentManagedThreadId == waitingThread;
                // The observer runs with the queue's lock released: another thread can use the queue meanwhile.
                lockFree &= Task.Run(() => q.Count).Wait(TimeSpan.FromSeconds(30));
            }))
            {
                added = q.TryAdd(2, 1, Deadline.After(TimeSpan.FromSeconds(2.5)), CancellationToken.None);
            }
            Assert.False(added);
            Assert.True(calls >= 1, $"the observer was called {calls} times in a wait of 2.5 s");
            Assert.True(sameThread);
            Assert.True(lockFree);
            Assert.False(WaitObserver.IsObserved); // the scope put back what was there before
        }

        [Fact]
        public void AnObservedWaitStillEndsWhenRoomIsMadeAndScopesNest()
        {
            var q = new BoundedQueue<int>(1, 100);
            Assert.True(q.TryAdd(1, 1, Deadline.After(TimeSpan.Zero), CancellationToken.None));
            int outer = 0, inner = 0;
            using (WaitObserver.Observe(() => outer++))
            {
                using (WaitObserver.Observe(() =>
                {
                    inner++;
                    var taken = new System.Collections.Generic.List<int>();
                    q.TakeBatch(taken, 1, Deadline.After(TimeSpan.Zero), CancellationToken.None); // room, from the observer itself
                }))
                {
                    Assert.True(q.TryAdd(2, 1, Deadline.Infinite, CancellationToken.None));
                }
                Assert.True(WaitObserver.IsObserved);
            }
            Assert.True(inner >= 1);
            Assert.Equal(0, outer);
            Assert.False(WaitObserver.IsObserved);
        }

        [Fact]
        public void AThreadWithoutAnObserverWaitsInOnePiece()
        {
            Assert.False(WaitObserver.IsObserved);
            Deadline deadline = Deadline.After(TimeSpan.FromHours(1));
            Assert.True(WaitObserver.Slice(deadline).RemainingMilliseconds > 60 * 1000, "unobserved, the slice is the whole deadline");
            using (WaitObserver.Observe(() => { }))
            {
                Assert.True(WaitObserver.Slice(deadline).RemainingMilliseconds <= 1000);
            }
        }
    }
}
