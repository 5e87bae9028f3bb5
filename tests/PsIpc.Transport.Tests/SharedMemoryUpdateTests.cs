using System;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using PsIpc.Transport.SharedMemory;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>SharedMemorySegment.Update: read-modify-write under one lock, re-entry refused, nothing written on failure.</summary>
    [Collection(SharedMemoryCollection.Name)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class SharedMemoryUpdateTests : SharedMemoryTestBase
    {
        private static readonly Deadline Long = Deadline.After(TimeSpan.FromMinutes(2));

        private SharedMemorySegment NewSegment() => Track((SharedMemorySegment)SharedMemoryChannel.Create(NewName(), 4096, false));

        private static IpcMessage Text(SharedMemorySegment segment, string text) =>
            IpcMessage.Create(MessageFormat.Text, Encoding.UTF8.GetBytes(text), segment);

        private static int Number(IpcMessage? value) => value == null ? 0 : int.Parse(value.GetText(), System.Globalization.CultureInfo.InvariantCulture);

        [Fact]
        public void TheCallbackGetsNullFirstThenTheLatestValue()
        {
            SharedMemorySegment segment = NewSegment();
            IpcMessage? seen = Text(segment, "not called");
            Assert.True(segment.Update(current => { seen = current; return Text(segment, "1"); }, Long, CancellationToken.None));
            Assert.Null(seen);
            Assert.True(segment.Update(current => Text(segment, (Number(current) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)), Long, CancellationToken.None));
            Assert.Equal("2", ValueOf(segment, Long).GetText());
            Assert.Equal(0, segment.LockHolder);
        }

        [Fact]
        public void NullFromTheCallbackLeavesTheValueAndAThrowWritesNothing()
        {
            SharedMemorySegment segment = NewSegment();
            segment.WriteValue(MessageFormat.Text, Encoding.UTF8.GetBytes("kept"), Long, CancellationToken.None);
            long writes = segment.WriteCount;
            Assert.False(segment.Update(_ => null, Long, CancellationToken.None));
            Assert.Throws<InvalidOperationException>(() => segment.Update(_ => throw new InvalidOperationException("no"), Long, CancellationToken.None));
            Assert.Equal("kept", ValueOf(segment, Long).GetText());
            Assert.Equal(writes, segment.WriteCount);
            Assert.Equal(0, segment.LockHolder);
        }

        [Fact]
        public void TooLargeAValueIsRefusedUnderTheLockAndReleasesIt()
        {
            SharedMemorySegment segment = NewSegment();
            Throws(IpcErrorKind.SharedMemoryTooLarge, () => segment.Update(_ => IpcMessage.Create(MessageFormat.Bytes, new byte[5000], segment), Long, CancellationToken.None));
            Assert.Equal(0, segment.LockHolder);
        }

        [Fact]
        public void TheSameThreadAskingForTheLockInsideTheCallbackIsRefusedEvenWhenTheCallbackSwallowsIt()
        {
            SharedMemorySegment segment = NewSegment();
            var second = Track((SharedMemorySegment)SharedMemoryChannel.Open(segment.Name));
            segment.WriteValue(MessageFormat.Text, Encoding.UTF8.GetBytes("1"), Long, CancellationToken.None);
            IpcException? inner = null;
            Throws(IpcErrorKind.SharedMemoryLockReentry, () => segment.Update(_ =>
            {
                inner = Assert.Throws<IpcException>(() => second.ReadValue(Long, CancellationToken.None));
                return Text(segment, "2"); // returned anyway: not written
            }, Long, CancellationToken.None));
            Assert.Equal(IpcErrorKind.SharedMemoryLockReentry, inner?.Kind);
            Assert.Equal("1", ValueOf(segment, Long).GetText());
            // Afterwards the thread is not marked any more.
            segment.WriteValue(MessageFormat.Text, Encoding.UTF8.GetBytes("3"), Long, CancellationToken.None);
            Assert.Equal("3", ValueOf(second, Long).GetText());
        }

        [Fact]
        public async Task AnotherThreadWaitsForTheUpdateInsteadOfBeingRefused()
        {
            SharedMemorySegment segment = NewSegment();
            var second = Track((SharedMemorySegment)SharedMemoryChannel.Open(segment.Name));
            using var inside = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            Task updating = Task.Run(() => segment.Update(_ =>
            {
                inside.Set();
                release.Wait(TimeSpan.FromMinutes(2));
                return Text(segment, "10");
            }, Long, CancellationToken.None));
            Assert.True(inside.Wait(TimeSpan.FromMinutes(2)));
            Throws(IpcErrorKind.SharedMemoryLockTimeout, () => second.ReadValue(Deadline.After(TimeSpan.Zero), CancellationToken.None));
            release.Set();
            await updating.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.Equal("10", ValueOf(second, Long).GetText());
        }

        [Fact]
        public void ConcurrentIncrementsEndWithTheExactTotal()
        {
            SharedMemorySegment segment = NewSegment();
            var opened = new SharedMemorySegment[4];
            for (int t = 0; t < opened.Length; t++) opened[t] = Track((SharedMemorySegment)SharedMemoryChannel.Open(segment.Name));
            Parallel.For(0, opened.Length, t =>
            {
                SharedMemorySegment mine = opened[t];
                for (int i = 0; i < 250; i++)
                {
                    mine.Update(current => Text(mine, (Number(current) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)), Long, CancellationToken.None);
                }
            });
            Assert.Equal("1000", ValueOf(segment, Long).GetText());
        }
    }
}
