using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using PsIpc.Transport.SharedMemory;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// A segment's file truncated by another process while it is mapped. Touching a mapped page beyond the end
    /// of its file is SIGBUS, which kills the process: had any of these calls touched the mapping, the test run
    /// would have died rather than failed. Every call must see the shrunken file first and throw
    /// SharedMemoryTruncated instead.
    /// </summary>
    [Collection(SharedMemoryCollection.Name)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class SharedMemoryTruncationTests : SharedMemoryTestBase
    {
        private static readonly Deadline Patient = Deadline.After(Wire.Patience);
        private const int LockWaitersOffset = 44, ConsumersWaitingOffset = 88, ProducersWaitingOffset = 92;

        // 0: the whole file, header included. 64: half the header (the lock word at 40 stays in the file).
        // 228: the header and 100 bytes (the first page stays, the rest of the data area is gone).
        public static IEnumerable<object[]> Lengths() => new[] { new object[] { 0L }, new object[] { 64L }, new object[] { 228L } };

        [Theory]
        [MemberData(nameof(Lengths))]
        public void EveryCallOnATruncatedSegmentIsAnErrorNotACrash(long length)
        {
            string name = NewName();
            var writer = (SharedMemorySegment)Track(SharedMemoryChannel.Create(name, 64 * 1024, false));
            var reader = (SharedMemorySegment)Track(SharedMemoryChannel.Open(name));
            writer.WriteValue(MessageFormat.Text, Wire.Text("before"), Patient, CancellationToken.None);

            Truncate(writer.Address, length);

            var e = Throws(IpcErrorKind.SharedMemoryTruncated, () => reader.ReadValue(Patient, CancellationToken.None));
            Assert.Contains("truncated", e.Message);
            Assert.Contains($"{length} bytes now", e.Message);
            Assert.Equal(name, e.Target);
            Throws(IpcErrorKind.SharedMemoryTruncated, () => writer.WriteValue(MessageFormat.Text, Wire.Text("after"), Patient, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryTruncated, () => reader.ReadBytes(60 * 1024, 16, Patient, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryTruncated, () => writer.WriteBytes(0, new byte[] { 1 }, Patient, CancellationToken.None));
            // Properties (table views) read the header: they show defaults instead.
            Assert.False(reader.IsDamaged);
            Assert.Equal(0, reader.WriteCount);
            Assert.Equal(0, reader.ValueLength);
            Assert.Equal(0, reader.LockHolder);
            writer.Close(Patient);
            reader.Close(Patient);
        }

        [Theory]
        [MemberData(nameof(Lengths))]
        public void EveryCallOnATruncatedQueueIsAnErrorNotACrash(long length)
        {
            string name = NewName();
            var producer = (SharedMemoryQueue)Track(SharedMemoryChannel.Create(name, 64 * 1024, true));
            var consumer = (SharedMemoryQueue)Track(SharedMemoryChannel.Open(name));
            producer.Send(MessageFormat.Text, Wire.Text("one"), Patient, CancellationToken.None);
            producer.Send(MessageFormat.Text, Wire.Text("two"), Patient, CancellationToken.None);
            var taken = new List<IpcMessage>();
            Assert.Equal(2, consumer.Receive(taken, 10, Patient, CancellationToken.None));

            Truncate(producer.Address, length);

            Throws(IpcErrorKind.SharedMemoryTruncated, () => producer.Send(MessageFormat.Text, Wire.Text("three"), Patient, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryTruncated, () => producer.SendMany(MessageFormat.Bytes, new[] { Bytes(10, 1), Bytes(20, 2) }, Patient, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryTruncated, () => consumer.Receive(new List<IpcMessage>(), 10, Patient, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryTruncated, () => consumer.Receive(new List<IpcMessage>(), 10, Deadline.After(TimeSpan.Zero), CancellationToken.None));
            Assert.Equal(0, consumer.Count);
            Assert.Equal(0, consumer.UsedBytes);

            // A batch the caller could not deliver cannot go back into the ring: it stays with the channel, not lost.
            consumer.ReturnUnreceived(taken, 0);
            var again = new List<IpcMessage>();
            Assert.Equal(2, consumer.Receive(again, 10, Patient, CancellationToken.None));
            Assert.Equal(new[] { "one", "two" }, new[] { again[0].GetText(), again[1].GetText() });
        }

        [Fact]
        public async Task AReceiverAsleepOnAnEmptyQueueWakesWithTheError()
        {
            string name = NewName();
            Track(SharedMemoryChannel.Create(name, 64 * 1024, true));
            var consumer = Track(SharedMemoryChannel.Open(name));
            Task<int> waiting = Background.Run(() => consumer.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, CancellationToken.None));
            await Background.AssertStillBlocked(waiting);
            WaitForWord(consumer.Address, ConsumersWaitingOffset, 1); // asleep: the truncation lands during its sleep
            Truncate(consumer.Address, 0);
            var e = await Assert.ThrowsAsync<IpcException>(() => waiting.WaitAsync(Wire.Patience));
            Assert.Equal(IpcErrorKind.SharedMemoryTruncated, e.Kind);
        }

        [Fact]
        public async Task ASenderAsleepOnAFullQueueWakesWithTheError()
        {
            string name = NewName();
            var producer = Track(SharedMemoryChannel.Create(name, 64, true));
            producer.Send(MessageFormat.Bytes, new byte[56], Patient, CancellationToken.None); // fills the 64-byte ring
            Task sending = Background.Run(() => producer.Send(MessageFormat.Bytes, new byte[8], Deadline.Infinite, CancellationToken.None));
            await Background.AssertStillBlocked(sending);
            WaitForWord(producer.Address, ProducersWaitingOffset, 1);
            Truncate(producer.Address, 100);
            var e = await Assert.ThrowsAsync<IpcException>(() => sending.WaitAsync(Wire.Patience));
            Assert.Equal(IpcErrorKind.SharedMemoryTruncated, e.Kind);
        }

        [Fact]
        public async Task AWaiterForTheLockWakesWithTheError()
        {
            string name = NewName();
            var segment = (SharedMemorySegment)Track(SharedMemoryChannel.Create(name, 64 * 1024, false));
            Poke(segment.Address, 40, BitConverter.GetBytes(1)); // the lock is held by pid 1, which is alive
            Task<IpcMessage?> waiting = Background.Run(() => (IpcMessage?)segment.ReadValue(Deadline.Infinite, CancellationToken.None));
            await Background.AssertStillBlocked(waiting);
            WaitForWord(segment.Address, LockWaitersOffset, 1);
            Truncate(segment.Address, 0);
            var e = await Assert.ThrowsAsync<IpcException>(() => waiting.WaitAsync(Wire.Patience));
            Assert.Equal(IpcErrorKind.SharedMemoryTruncated, e.Kind);
        }

        [Fact]
        public void AFileThatGrewIsStillUsable()
        {
            // Only a file shorter than the mapping is dangerous: bytes added after the end are simply not mapped.
            string name = NewName();
            var segment = (SharedMemorySegment)Track(SharedMemoryChannel.Create(name, 4096, false));
            Truncate(segment.Address, 128 + 4096 + 8192);
            segment.WriteValue(MessageFormat.Text, Wire.Text("still here"), Patient, CancellationToken.None);
            Assert.Equal("still here", ValueOf(segment, Patient).GetText());
        }
    }
}
