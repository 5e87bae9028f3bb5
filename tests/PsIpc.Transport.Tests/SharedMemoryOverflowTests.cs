using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using PsIpc.Transport.SharedMemory;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// Queue headers crafted so that positions computed from them overflow 64 bits. Before the checks a header
    /// with head = tail near 2^63 passed every test, and a batched send then computed a negative ring offset
    /// and wrote outside the mapping. Every such header must now be a SharedMemoryCorrupt error.
    /// </summary>
    [Collection(SharedMemoryCollection.Name)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class SharedMemoryOverflowTests : SharedMemoryTestBase
    {
        private const long Capacity = 4096;
        private const long MaxPosition = 1L << 62;
        private const int HeadOffset = 64, TailOffset = 72;

        private static readonly Deadline Patient = Deadline.After(Wire.Patience);

        private string CraftedQueue(long capacity, long head, long tail)
        {
            byte[] file = ValidHeader(capacity, kind: 2);
            BitConverter.GetBytes(head).CopyTo(file, HeadOffset);
            BitConverter.GetBytes(tail).CopyTo(file, TailOffset);
            return WriteRawSegment(file);
        }

        public static IEnumerable<object[]> OverflowingCounters()
        {
            yield return new object[] { "head = tail just below 2^63", long.MaxValue - 7, long.MaxValue - 7 };
            yield return new object[] { "head = tail one ring below 2^63", long.MaxValue - 4095, long.MaxValue - 4095 };
            yield return new object[] { "a full ring ending just below 2^63", long.MaxValue - 7 - Capacity, long.MaxValue - 7 };
            yield return new object[] { "head = tail one record past 2^62", MaxPosition + 8, MaxPosition + 8 };
            yield return new object[] { "a negative head and tail", long.MinValue, long.MinValue + 8 };
            yield return new object[] { "a tail that a 64-bit difference wraps around", long.MinValue + 8, long.MaxValue - 7 };
        }

        [Theory]
        [MemberData(nameof(OverflowingCounters))]
        public void ASingleSendIsRefused(string what, long head, long tail)
        {
            var q = Track(SharedMemoryChannel.Open(CraftedQueue(Capacity, head, tail)));
            var e = Throws(IpcErrorKind.SharedMemoryCorrupt, () => q.Send(MessageFormat.Text, Wire.Text("x"), Patient, CancellationToken.None));
            Assert.True(e.Message.Contains("corrupt"), $"{what}: {e.Message}");
        }

        [Theory]
        [MemberData(nameof(OverflowingCounters))]
        public void ABatchedSendIsRefused(string what, long head, long tail)
        {
            var q = (SharedMemoryQueue)Track(SharedMemoryChannel.Open(CraftedQueue(Capacity, head, tail)));
            var batch = Enumerable.Range(0, 20).Select(i => Bytes(24 + i, i)).ToList();
            var e = Throws(IpcErrorKind.SharedMemoryCorrupt, () => q.SendMany(MessageFormat.Bytes, batch, Patient, CancellationToken.None));
            Assert.True(e.Message.Contains("corrupt"), $"{what}: {e.Message}");
            Assert.True(q.IsDamaged, what);
        }

        [Theory]
        [MemberData(nameof(OverflowingCounters))]
        public void AReceiveIsRefused(string what, long head, long tail)
        {
            var q = Track(SharedMemoryChannel.Open(CraftedQueue(Capacity, head, tail)));
            var e = Throws(IpcErrorKind.SharedMemoryCorrupt, () => q.Receive(new List<IpcMessage>(), 10, Deadline.After(TimeSpan.Zero), CancellationToken.None));
            Assert.True(e.Message.Contains("corrupt"), $"{what}: {e.Message}");
        }

        [Theory]
        [MemberData(nameof(OverflowingCounters))]
        public void GetSharedMemoryReportsTheQueueAsCorrupt(string what, long head, long tail)
        {
            string name = CraftedQueue(Capacity, head, tail);
            SharedMemoryInfo info = SharedMemoryInfo.List().Single(i => i.Name == name);
            Assert.True(info.Status.Contains("corrupt"), $"{what}: {info.Status}");
        }

        [Fact]
        public void AQueueWorksUpToTheLargestPositionAndStopsThere()
        {
            // Counters 64 bytes below 2^62 in a 4096-byte ring: the records straddle the end of the ring.
            var q = (SharedMemoryQueue)Track(SharedMemoryChannel.Open(CraftedQueue(Capacity, MaxPosition - 64, MaxPosition - 64)));
            var batch = new[] { Bytes(8, 1), Bytes(5, 2), Bytes(1, 3) }; // 16 bytes each
            q.SendMany(MessageFormat.Bytes, batch, Patient, CancellationToken.None);
            var got = new List<IpcMessage>();
            Assert.Equal(3, q.Receive(got, 10, Patient, CancellationToken.None));
            Assert.Equal(batch, got.Select(m => m.Payload));

            q.ReturnUnreceived(got, 1); // back in front of the head, near the top as well
            var again = new List<IpcMessage>();
            Assert.Equal(2, q.Receive(again, 10, Patient, CancellationToken.None));
            Assert.Equal(batch.Skip(1), again.Select(m => m.Payload));

            q.Send(MessageFormat.Bytes, Bytes(8, 4), Patient, CancellationToken.None); // ends exactly at 2^62
            var last = new List<IpcMessage>();
            Assert.Equal(1, q.Receive(last, 10, Patient, CancellationToken.None));
            Assert.Equal(Bytes(8, 4), last[0].Payload);
            var e = Throws(IpcErrorKind.SharedMemoryCorrupt, () => q.Send(MessageFormat.Bytes, Bytes(8, 5), Patient, CancellationToken.None));
            Assert.Contains("would pass", e.Message);
        }

        [Fact]
        public void LargeBatchesNearTheLargestPositionAreTakenRecordByRecord()
        {
            // Over the one-copy limit (256 KiB): the record-by-record path, with positions near 2^62.
            const long capacity = 1000 * 1000;
            long start = MaxPosition - 600 * 1000;
            start -= start % 8;
            var q = (SharedMemoryQueue)Track(SharedMemoryChannel.Open(CraftedQueue(capacity, start, start)));
            var batch = Enumerable.Range(0, 2).Select(i => Bytes(200 * 1000 + i, i)).ToList();
            q.SendMany(MessageFormat.Bytes, batch, Patient, CancellationToken.None);
            var got = new List<IpcMessage>();
            while (got.Count < 2) q.Receive(got, 10, Patient, CancellationToken.None);
            Assert.Equal(batch, got.Select(m => m.Payload));
        }
    }
}
