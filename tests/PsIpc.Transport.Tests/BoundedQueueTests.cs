using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using Xunit;

namespace PsIpc.Transport.Tests
{
    public class BoundedQueueTests
    {
        private static readonly Deadline Poll = Deadline.After(TimeSpan.Zero);

        // A blocked call cannot complete before the test releases it, so "not done yet" is a safe check
        // whatever the scheduling; how long we look only limits how often a bug would be caught.
        private static Task AssertStillBlocked(Task task) => Background.AssertStillBlocked(task);

        private static Task<T> Finishes<T>(Task<T> task) => Background.Finishes(task);

        private static async Task AssertCancelled(Task task)
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task.WaitAsync(Wire.Patience));
        }

        private static int TakeNow(BoundedQueue<int> q, List<int> into, int max = int.MaxValue) =>
            q.TakeBatch(into, max, Poll, CancellationToken.None);

        [Fact]
        public void ItemsComeOutInTheOrderTheyWentIn()
        {
            var q = new BoundedQueue<int>(100, 1000);
            for (int i = 0; i < 50; i++) Assert.True(q.TryAdd(i, 1, Poll, CancellationToken.None));

            var taken = new List<int>();
            Assert.Equal(50, TakeNow(q, taken));

            Assert.Equal(Enumerable.Range(0, 50), taken);
            Assert.Equal(0, q.Count);
            Assert.Equal(0, q.Bytes);
        }

        [Fact]
        public void CountAndBytesTrackWhatIsQueued()
        {
            var q = new BoundedQueue<int>(100, 1000);
            q.TryAdd(1, 10, Poll, CancellationToken.None);
            q.TryAdd(2, 32, Poll, CancellationToken.None);

            Assert.Equal(2, q.Count);
            Assert.Equal(42, q.Bytes);

            TakeNow(q, new List<int>(), 1);
            Assert.Equal(1, q.Count);
            Assert.Equal(32, q.Bytes);
        }

        [Fact]
        public void TakeBatchTakesAtMostMaxAndLeavesTheRestInOrder()
        {
            var q = new BoundedQueue<int>(100, 1000);
            for (int i = 0; i < 10; i++) q.TryAdd(i, 1, Poll, CancellationToken.None);

            var first = new List<int>();
            var second = new List<int>();
            Assert.Equal(3, TakeNow(q, first, 3));
            Assert.Equal(7, TakeNow(q, second, 100));

            Assert.Equal(new[] { 0, 1, 2 }, first);
            Assert.Equal(Enumerable.Range(3, 7), second);
        }

        [Fact]
        public void TakeBatchAppendsToWhatTheListAlreadyHolds()
        {
            var q = new BoundedQueue<int>(10, 10);
            q.TryAdd(7, 1, Poll, CancellationToken.None);
            var into = new List<int> { -1 };

            TakeNow(q, into);

            Assert.Equal(new[] { -1, 7 }, into);
        }

        [Fact]
        public void TryAddRangeAddsInOrderUntilFull()
        {
            var q = new BoundedQueue<int>(3, 1000);

            int added = q.TryAddRange(new[] { 1, 2, 3, 4, 5 }, _ => 1, Poll, CancellationToken.None);

            Assert.Equal(3, added);
            var taken = new List<int>();
            TakeNow(q, taken);
            Assert.Equal(new[] { 1, 2, 3 }, taken);
        }

        [Fact]
        public async Task ItemCountBoundBlocksTheAdderUntilATake()
        {
            var q = new BoundedQueue<int>(2, 1_000_000);
            q.TryAdd(1, 1, Poll, CancellationToken.None);
            q.TryAdd(2, 1, Poll, CancellationToken.None);
            Assert.False(q.TryAdd(3, 1, Poll, CancellationToken.None));

            Task<bool> adder = Background.Run(() => q.TryAdd(3, 1, Deadline.Infinite, CancellationToken.None));
            await AssertStillBlocked(adder);
            Assert.Equal(2, q.Count);

            Assert.Equal(1, TakeNow(q, new List<int>(), 1));

            Assert.True((await Finishes(adder)));
            var rest = new List<int>();
            TakeNow(q, rest);
            Assert.Equal(new[] { 2, 3 }, rest);
        }

        [Fact]
        public async Task ByteBoundBlocksTheAdderUntilATake()
        {
            var q = new BoundedQueue<int>(1000, 100);
            q.TryAdd(1, 60, Poll, CancellationToken.None);
            q.TryAdd(2, 40, Poll, CancellationToken.None); // exactly at the bound: fits
            Assert.False(q.TryAdd(3, 1, Poll, CancellationToken.None));

            Task<bool> adder = Background.Run(() => q.TryAdd(3, 50, Deadline.Infinite, CancellationToken.None));
            await AssertStillBlocked(adder);

            TakeNow(q, new List<int>(), 1); // frees 60 bytes: 40 + 50 fits

            Assert.True((await Finishes(adder)));
            Assert.Equal(90, q.Bytes);
        }

        [Fact]
        public async Task TryAddRangeWaitsForRoomForTheRest()
        {
            var q = new BoundedQueue<int>(2, 1000);
            Task<int> adder = Background.Run(() => q.TryAddRange(new[] { 1, 2, 3, 4 }, _ => 1, Deadline.Infinite, CancellationToken.None));

            var taken = new List<int>();
            while (taken.Count < 4)
            {
                Assert.NotEqual(0, q.TakeBatch(taken, 10, Wire.PatientDeadline(), CancellationToken.None));
            }

            Assert.Equal(4, (await Finishes(adder)));
            Assert.Equal(new[] { 1, 2, 3, 4 }, taken);
        }

        [Fact]
        public void ItemLargerThanTheByteBoundIsAcceptedWhenTheQueueIsEmpty()
        {
            var q = new BoundedQueue<int>(10, 100);

            Assert.True(q.TryAdd(1, 10_000, Poll, CancellationToken.None));
            Assert.Equal(10_000, q.Bytes);

            // ...but nothing joins it until it is taken.
            Assert.False(q.TryAdd(2, 1, Poll, CancellationToken.None));
            TakeNow(q, new List<int>());
            Assert.True(q.TryAdd(2, 1, Poll, CancellationToken.None));
        }

        [Fact]
        public async Task ItemLargerThanTheByteBoundWaitsForTheQueueToEmpty()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.TryAdd(1, 10, Poll, CancellationToken.None);
            Assert.False(q.TryAdd(2, 500, Poll, CancellationToken.None));

            Task<bool> adder = Background.Run(() => q.TryAdd(2, 500, Deadline.Infinite, CancellationToken.None));
            await AssertStillBlocked(adder);
            TakeNow(q, new List<int>());

            Assert.True((await Finishes(adder)));
        }

        [Fact]
        public void DeadlineZeroPollsATakeOnAnEmptyQueue()
        {
            var q = new BoundedQueue<int>(10, 100);
            var into = new List<int>();

            Assert.Equal(0, q.TakeBatch(into, 10, Poll, CancellationToken.None));
            Assert.Empty(into);
        }

        [Fact]
        public void DeadlineZeroPollsAnAddToAFullQueue()
        {
            var q = new BoundedQueue<int>(1, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);

            Assert.False(q.TryAdd(2, 1, Poll, CancellationToken.None));
            Assert.Equal(0, q.TryAddRange(new[] { 2, 3 }, _ => 1, Poll, CancellationToken.None));
            Assert.Equal(1, q.Count);
        }

        [Fact]
        public void DeadlineZeroStillTakesWhatIsThere()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.TryAdd(5, 1, Poll, CancellationToken.None);
            var into = new List<int>();

            Assert.Equal(1, q.TakeBatch(into, 10, Poll, CancellationToken.None));
            Assert.Equal(new[] { 5 }, into);
        }

        [Fact]
        public void ShortDeadlineEndsAWaitingTakeWithZero()
        {
            var q = new BoundedQueue<int>(10, 100);

            Assert.Equal(0, q.TakeBatch(new List<int>(), 10, Deadline.After(TimeSpan.FromMilliseconds(20)), CancellationToken.None));
        }

        [Fact]
        public async Task CancellationWakesABlockedTaker()
        {
            var q = new BoundedQueue<int>(10, 100);
            using var cts = new CancellationTokenSource();
            Task<int> taker = Background.Run(() => q.TakeBatch(new List<int>(), 10, Deadline.Infinite, cts.Token));
            await AssertStillBlocked(taker);

            cts.Cancel();

            await AssertCancelled(taker);
        }

        [Fact]
        public async Task CancellationWakesABlockedAdder()
        {
            var q = new BoundedQueue<int>(1, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);
            using var cts = new CancellationTokenSource();
            Task<bool> adder = Background.Run(() => q.TryAdd(2, 1, Deadline.Infinite, cts.Token));
            await AssertStillBlocked(adder);

            cts.Cancel();

            await AssertCancelled(adder);
            Assert.Equal(1, q.Count);
        }

        [Fact]
        public void AlreadyCancelledTokenThrowsInsteadOfWaiting()
        {
            var q = new BoundedQueue<int>(10, 100);
            using var cts = new CancellationTokenSource();
            cts.Cancel();

            Assert.ThrowsAny<OperationCanceledException>(() => q.TakeBatch(new List<int>(), 1, Deadline.Infinite, cts.Token));
        }

        [Fact]
        public void CancellationDoesNotPreventTakingWhatIsAlreadyThere()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);
            using var cts = new CancellationTokenSource();
            cts.Cancel();

            Assert.Equal(1, q.TakeBatch(new List<int>(), 1, Deadline.Infinite, cts.Token));
        }

        [Fact]
        public void CompleteLetsTakersDrainThenReturnsMinusOne()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);
            q.TryAdd(2, 1, Poll, CancellationToken.None);

            q.Complete();

            Assert.True(q.IsCompleted);
            Assert.False(q.IsDrained);
            var into = new List<int>();
            Assert.Equal(1, q.TakeBatch(into, 1, Deadline.Infinite, CancellationToken.None));
            Assert.Equal(1, q.TakeBatch(into, 1, Deadline.Infinite, CancellationToken.None));
            Assert.Equal(-1, q.TakeBatch(into, 1, Deadline.Infinite, CancellationToken.None));
            Assert.Equal(new[] { 1, 2 }, into);
            Assert.True(q.IsDrained);
        }

        [Fact]
        public async Task CompleteWakesABlockedTakerWithMinusOne()
        {
            var q = new BoundedQueue<int>(10, 100);
            Task<int> taker = Background.Run(() => q.TakeBatch(new List<int>(), 10, Deadline.Infinite, CancellationToken.None));
            await AssertStillBlocked(taker);

            q.Complete();

            Assert.Equal(-1, (await Finishes(taker)));
        }

        [Fact]
        public void AddAfterCompleteThrows()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.Complete();

            Assert.Throws<InvalidOperationException>(() => q.TryAdd(1, 1, Poll, CancellationToken.None));
            Assert.Throws<InvalidOperationException>(() => q.TryAddRange(new[] { 1 }, _ => 1, Poll, CancellationToken.None));
        }

        [Fact]
        public async Task CompleteWakesABlockedAdderWithInvalidOperation()
        {
            var q = new BoundedQueue<int>(1, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);
            Task<bool> adder = Background.Run(() => q.TryAdd(2, 1, Deadline.Infinite, CancellationToken.None));
            await AssertStillBlocked(adder);

            q.Complete();

            await Assert.ThrowsAsync<InvalidOperationException>(() => adder.WaitAsync(Wire.Patience));
        }

        [Fact]
        public void CompleteAndClearReturnsWhatWasQueuedAndEndsTakers()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.TryAdd(1, 5, Poll, CancellationToken.None);
            q.TryAdd(2, 5, Poll, CancellationToken.None);

            List<int> left = q.CompleteAndClear();

            Assert.Equal(new[] { 1, 2 }, left);
            Assert.Equal(0, q.Count);
            Assert.Equal(0, q.Bytes);
            Assert.True(q.IsDrained);
            Assert.Equal(-1, q.TakeBatch(new List<int>(), 10, Deadline.Infinite, CancellationToken.None));
        }

        [Fact]
        public async Task CompleteAndClearWakesABlockedAdder()
        {
            var q = new BoundedQueue<int>(1, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);
            Task<bool> adder = Background.Run(() => q.TryAdd(2, 1, Deadline.Infinite, CancellationToken.None));
            await AssertStillBlocked(adder);

            q.CompleteAndClear();

            await Assert.ThrowsAsync<InvalidOperationException>(() => adder.WaitAsync(Wire.Patience));
        }

        [Fact]
        public void WaitUntilEmptyReturnsAtOnceOnAnEmptyQueue()
        {
            var q = new BoundedQueue<int>(10, 100);

            Assert.True(q.WaitUntilEmpty(Poll, CancellationToken.None));
        }

        [Fact]
        public void WaitUntilEmptyTimesOutWhileItemsRemain()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);

            Assert.False(q.WaitUntilEmpty(Poll, CancellationToken.None));
            Assert.False(q.WaitUntilEmpty(Deadline.After(TimeSpan.FromMilliseconds(20)), CancellationToken.None));
        }

        [Fact]
        public async Task WaitUntilEmptyReturnsOnceEverythingIsTaken()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);
            q.TryAdd(2, 1, Poll, CancellationToken.None);
            Task<bool> waiter = Background.Run(() => q.WaitUntilEmpty(Deadline.Infinite, CancellationToken.None));

            TakeNow(q, new List<int>(), 1);
            await AssertStillBlocked(waiter); // one item left
            TakeNow(q, new List<int>(), 1);

            Assert.True((await Finishes(waiter)));
        }

        [Fact]
        public async Task WaitUntilEmptyReturnsWhenTheQueueIsCleared()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);
            Task<bool> waiter = Background.Run(() => q.WaitUntilEmpty(Deadline.Infinite, CancellationToken.None));
            await AssertStillBlocked(waiter);

            q.CompleteAndClear();

            Assert.True((await Finishes(waiter)));
        }

        [Fact]
        public async Task WaitUntilEmptyIsCancellable()
        {
            var q = new BoundedQueue<int>(10, 100);
            q.TryAdd(1, 1, Poll, CancellationToken.None);
            using var cts = new CancellationTokenSource();
            Task<bool> waiter = Background.Run(() => q.WaitUntilEmpty(Deadline.Infinite, cts.Token));
            await AssertStillBlocked(waiter);

            cts.Cancel();

            await AssertCancelled(waiter);
        }

        [Fact]
        public async Task ProducerAndConsumerThreadsLoseNothingAndKeepOrder()
        {
            const int count = 200_000;
            var q = new BoundedQueue<int>(64, 1000);
            Task producer = Background.Run(() =>
            {
                for (int i = 0; i < count; i++) Assert.True(q.TryAdd(i, 10, Deadline.Infinite, CancellationToken.None));
                q.Complete();
            });

            var taken = new List<int>(count);
            while (q.TakeBatch(taken, 17, Wire.PatientDeadline(), CancellationToken.None) > 0) { }

            await producer.WaitAsync(Wire.Patience);
            Assert.Equal(count, taken.Count);
            for (int i = 0; i < count; i++) Assert.Equal(i, taken[i]);
        }
    }
}
