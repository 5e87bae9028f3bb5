using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.SharedMemory;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>The queue: batches, order and formats across the end of the ring, full and empty waits, returned batches, many producers and consumers.</summary>
    [Collection(SharedMemoryCollection.Name)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class SharedMemoryQueueTests : SharedMemoryTestBase
    {
        private static void Send(IpcChannel q, string text, Deadline? deadline = null) =>
            q.Send(MessageFormat.Text, Wire.Text(text), deadline ?? Deadline.After(Wire.Patience), CancellationToken.None);

        // Takes what is there, up to max, calling Receive until it gets nothing more.
        private static List<string> Take(IpcChannel q, int max, Deadline? deadline = null)
        {
            var into = new List<IpcMessage>();
            int n = q.Receive(into, max, deadline ?? Deadline.After(Wire.Patience), CancellationToken.None);
            Assert.Equal(into.Count, Math.Max(n, 0));
            while (n > 0 && into.Count < max)
            {
                n = q.Receive(into, max - into.Count, Deadline.After(TimeSpan.Zero), CancellationToken.None);
            }
            return into.Select(m => m.GetText()).ToList();
        }

        [Fact]
        public void AReceiveTakesAtMostMaxAndLeavesTheRestInTheRing()
        {
            var q = Track(SharedMemoryChannel.Create(NewName(), 4096, true));
            foreach (string s in new[] { "a", "b", "c" }) Send(q, s);
            var into = new List<IpcMessage>();
            Assert.Equal(2, q.Receive(into, 2, Deadline.Infinite, CancellationToken.None));
            Assert.Equal(new[] { "a", "b" }, into.Select(m => m.GetText()));
            Assert.Equal(1, ((SharedMemoryQueue)q).Count); // the other stays in the ring for any consumer
        }

        [Fact]
        public async Task SendManyWritesABatchInOrderAcrossTheEndOfTheRingAndWaitsForRoom()
        {
            string name = NewName();
            var producer = (SharedMemoryQueue)Track(SharedMemoryChannel.Create(name, 256, true));
            var consumer = Track(SharedMemoryChannel.Open(name));
            // 48-byte records in a 256-byte ring: a batch of 12 needs three rounds of room, and records straddle the end.
            var batch = Enumerable.Range(0, 12).Select(i => Bytes(37 + i % 3, i)).ToList();
            Task sending = Background.Run(() => producer.SendMany(MessageFormat.Bytes, batch, Deadline.After(Wire.Patience), CancellationToken.None));
            var got = new List<IpcMessage>();
            while (got.Count < 12) consumer.Receive(got, 3, Deadline.After(Wire.Patience), CancellationToken.None);
            await sending.WaitAsync(Wire.Patience);
            Assert.Equal(batch, got.Select(m => m.Payload));
            Assert.All(got, m => Assert.Equal(MessageFormat.Bytes, m.Format));
            Assert.Equal(12, producer.MessagesSent);
            Assert.Equal(0, producer.Count);
        }

        [Fact]
        public void BatchesLargerThanOneCopyAreTakenRecordByRecordAcrossTheEnd()
        {
            // 200 KB messages in a 1 MB ring: a batch of two or more is over the 256 KiB one-copy limit, and
            // positions move so that payloads straddle the end of the ring.
            string name = NewName();
            var producer = (SharedMemoryQueue)Track(SharedMemoryChannel.Create(name, 1000 * 1000, true));
            var consumer = Track(SharedMemoryChannel.Open(name));
            for (int round = 0; round < 6; round++)
            {
                var batch = Enumerable.Range(0, 4).Select(i => Bytes(200 * 1000 + i, round * 4 + i)).ToList();
                producer.SendMany(MessageFormat.Bytes, batch, Deadline.After(Wire.Patience), CancellationToken.None);
                var got = new List<IpcMessage>();
                while (got.Count < 4) consumer.Receive(got, 10, Deadline.After(Wire.Patience), CancellationToken.None);
                Assert.Equal(batch, got.Select(m => m.Payload));
            }
            Assert.Equal(0, producer.Count);
        }

        [Fact]
        public void SendManyRefusesATooLargeMessageBeforeSendingAny()
        {
            var q = (SharedMemoryQueue)Track(SharedMemoryChannel.Create(NewName(), 128, true));
            Throws(IpcErrorKind.MessageTooLarge, () => q.SendMany(MessageFormat.Bytes, new[] { new byte[1], new byte[121] }, Deadline.Infinite, CancellationToken.None));
            Assert.Equal(0, q.Count);
        }

        [Fact]
        public void ARequestIsRefusedAtEitherEndBeforeAnythingIsSent()
        {
            // One ring that both ends send into and take from: the "reply" to a request would be the next message in the
            // ring (the one queued before it, or the request itself). So the request is refused and the ring is untouched.
            string name = NewName();
            var creator = (SharedMemoryQueue)Track(SharedMemoryChannel.Create(name, 4096, true));
            var opener = Track(SharedMemoryChannel.Open(name));
            Send(creator, "queued before");
            foreach (IpcChannel end in new IpcChannel[] { opener, creator })
            {
                Assert.False(end.CanRequest);
                IpcException e = Throws(IpcErrorKind.OperationNotSupported,
                    () => end.Request(MessageFormat.Text, Wire.Text("request"), Deadline.After(TimeSpan.FromSeconds(2)), CancellationToken.None));
                Assert.Contains("shared memory queue", e.Message);
                Assert.Contains("Nothing was sent", e.Message);
                Assert.Equal(name, e.Target);
                Throws(IpcErrorKind.OperationNotSupported,
                    () => end.TryRequest(MessageFormat.Text, Wire.Text("request"), Deadline.After(TimeSpan.Zero), CancellationToken.None, out _));
            }
            Assert.Equal(1, creator.Count);
            Assert.Equal(0, opener.MessagesSent);
            Assert.Equal(0, opener.MessagesReceived + creator.MessagesReceived);
            Assert.Equal(new[] { "queued before" }, Take(opener, 10));
            Assert.Equal(0, creator.Count);
        }

        [Fact]
        public void TheRingKeepsOrderFormatsAndWrapsAround()
        {
            string name = NewName();
            var producer = Track(SharedMemoryChannel.Create(name, 256, true));
            var consumer = Track(SharedMemoryChannel.Open(name));
            // 8-byte header + 40 bytes of payload = 48-byte records in a 256-byte ring: payloads straddle the end.
            for (int round = 0; round < 50; round++)
            {
                for (int i = 0; i < 3; i++) producer.Send(MessageFormat.Bytes, Bytes(37 + i, round * 3 + i), Deadline.Infinite, CancellationToken.None);
                var into = new List<IpcMessage>();
                Assert.Equal(3, consumer.Receive(into, 10, Deadline.Infinite, CancellationToken.None));
                for (int i = 0; i < 3; i++)
                {
                    Assert.Equal(MessageFormat.Bytes, into[i].Format);
                    Assert.Equal(Bytes(37 + i, round * 3 + i), into[i].Payload);
                }
            }
            producer.Send(MessageFormat.Json, Array.Empty<byte>(), Deadline.Infinite, CancellationToken.None); // 0 bytes
            var last = new List<IpcMessage>();
            Assert.Equal(1, consumer.Receive(last, 10, Deadline.Infinite, CancellationToken.None));
            Assert.Equal(MessageFormat.Json, last[0].Format);
            Assert.Empty(last[0].Payload);
            Assert.Equal(0, ((SharedMemoryQueue)consumer).Count);
        }

        [Fact]
        public void AFullQueueBlocksTheSenderUntilItsDeadlineAndDropsNothing()
        {
            var q = (SharedMemoryQueue)Track(SharedMemoryChannel.Create(NewName(), 64, true));
            Send(q, "0123456789abcdef");  // 24-byte record
            Send(q, "0123456789abcdef");  // 48
            var e = Throws(IpcErrorKind.SendTimeout, () => Send(q, "0123456789abcdef", Deadline.After(TimeSpan.FromMilliseconds(100))));
            Assert.True(e.IsTimeout);
            Assert.Equal(2, q.Count);
            Assert.Equal(2, Take(q, 10).Count);
            Assert.Empty(Take(q, 10, Deadline.After(TimeSpan.Zero)));
        }

        [Fact]
        public async Task ABlockedSenderGoesOnWhenAReceiverMakesRoom()
        {
            string name = NewName();
            var q = Track(SharedMemoryChannel.Create(name, 64, true));
            var other = Track(SharedMemoryChannel.Open(name));
            Send(q, "0123456789abcdef");
            Send(q, "0123456789abcdef");
            Task sender = Background.Run(() => Send(q, "third-0123456789")); // 24 more bytes do not fit
            await Background.AssertStillBlocked(sender);
            Assert.Equal(2, Take(other, 1).Count + Take(other, 1).Count);
            await Background.Finishes(sender.ContinueWith(t => { t.GetAwaiter().GetResult(); return 0; }));
            Assert.Equal(new[] { "third-0123456789" }, Take(other, 10));
        }

        [Fact]
        public void MessagesLargerThanTheRingAreRefused()
        {
            var q = (SharedMemoryQueue)Track(SharedMemoryChannel.Create(NewName(), 128, true));
            Assert.Equal(120, q.MaxMessageSize);
            q.Send(MessageFormat.Bytes, new byte[120], Deadline.Infinite, CancellationToken.None);
            Throws(IpcErrorKind.MessageTooLarge, () => q.Send(MessageFormat.Bytes, new byte[121], Deadline.Infinite, CancellationToken.None));
        }

        [Fact]
        public async Task AnIdleReceiverWakesForAMessageAndForCancellationAndForClose()
        {
            string name = NewName();
            var q = Track(SharedMemoryChannel.Create(name, 4096, true));
            var r = Track(SharedMemoryChannel.Open(name));
            Task<List<string>> waiting = Background.Run(() => Take(r, 10, Deadline.Infinite));
            await Background.AssertStillBlocked(waiting);
            Send(q, "wake up");
            Assert.Equal(new[] { "wake up" }, await Background.Finishes(waiting));

            var cts = new CancellationTokenSource();
            Task<int> cancelled = Background.Run(() => r.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, cts.Token));
            await Background.AssertStillBlocked(cancelled);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Wire.Patience));

            Task<int> closed = Background.Run(() => r.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, CancellationToken.None));
            await Background.AssertStillBlocked(closed);
            r.Close(Deadline.After(Wire.Patience));
            var e = await Assert.ThrowsAsync<IpcException>(() => closed.WaitAsync(Wire.Patience));
            Assert.Equal(IpcErrorKind.ChannelClosed, e.Kind);
            Send(q, "still open"); // closing one mapping leaves the others working
            Assert.Equal(1, ((SharedMemoryQueue)q).Count);
        }

        [Fact]
        public void ReturnedMessagesGoBackToTheHeadOfTheRingForEveryConsumer()
        {
            string name = NewName();
            var q = Track(SharedMemoryChannel.Create(name, 4096, true));
            var other = Track(SharedMemoryChannel.Open(name));
            foreach (string s in new[] { "a", "b", "c" }) Send(q, s);
            var batch = new List<IpcMessage>();
            Assert.Equal(3, q.Receive(batch, 10, Deadline.Infinite, CancellationToken.None));
            Send(q, "d");
            q.ReturnUnreceived(batch, 1);
            Assert.Equal(3, ((SharedMemoryQueue)q).Count);
            q.Close(Deadline.After(Wire.Patience)); // nothing of the batch stays behind in the closed channel
            Assert.Equal(new[] { "b", "c", "d" }, Take(other, 10)); // the returned two first, then the rest of the ring
        }

        [Fact]
        public void ReturnedMessagesThatNoLongerFitStayWithTheChannel()
        {
            var q = Track(SharedMemoryChannel.Create(NewName(), 64, true));
            Send(q, "0123456789abcdef"); // 24-byte records: two fill the 64-byte ring
            Send(q, "0123456789abcdef");
            var batch = new List<IpcMessage>();
            Assert.Equal(2, q.Receive(batch, 10, Deadline.Infinite, CancellationToken.None));
            Send(q, "third-0123456789");
            Send(q, "forth-0123456789");
            q.ReturnUnreceived(batch, 0); // 48 bytes do not fit in front of the head any more
            Assert.Equal(2, ((SharedMemoryQueue)q).Count);
            Assert.Equal(new[] { "0123456789abcdef", "0123456789abcdef", "third-0123456789", "forth-0123456789" }, Take(q, 10));
        }

        [Fact]
        public void LargeRecordsComeOneAtATimeInOrderAcrossTheEndOfTheRing()
        {
            string name = NewName();
            var producer = Track(SharedMemoryChannel.Create(name, 300_000, true));
            var consumer = Track(SharedMemoryChannel.Open(name));
            // Records of 85,000 bytes and more are taken alone, into an array made outside the lock; the small ones
            // around them still come in batches. 220 KB a round in a 300 KB ring: the large payloads straddle its end.
            for (int round = 0; round < 6; round++)
            {
                byte[][] sent = { Bytes(5, round), Bytes(100_000, round + 1), Bytes(7, round + 2), Bytes(120_003, round + 3) };
                foreach (byte[] payload in sent) producer.Send(MessageFormat.Bytes, payload, Deadline.After(Wire.Patience), CancellationToken.None);
                var into = new List<IpcMessage>();
                while (into.Count < sent.Length)
                {
                    int before = into.Count;
                    Assert.True(consumer.Receive(into, 10, Deadline.After(Wire.Patience), CancellationToken.None) > 0);
                    Assert.True(into.Count - before == 1 || into.Skip(before).All(m => m.Payload.Length < SharedRing.LargeRecordMinimum));
                }
                Assert.Equal(sent, into.Select(m => m.Payload).ToArray());
            }
            // A poll (no time to wait) takes a large record in the one call it makes.
            producer.Send(MessageFormat.Bytes, Bytes(90_000, 9), Deadline.After(Wire.Patience), CancellationToken.None);
            var polled = new List<IpcMessage>();
            Assert.Equal(1, consumer.Receive(polled, 10, Deadline.After(TimeSpan.Zero), CancellationToken.None));
            Assert.Equal(Bytes(90_000, 9), polled[0].Payload);
            Assert.Equal(0, ((SharedMemoryQueue)consumer).Count);
        }

        [Fact]
        public async Task TwoConsumersOfLargeRecordsOfChangingLengthsLoseAndDuplicateNothing()
        {
            string name = NewName();
            const int count = 300;
            var producer = Track(SharedMemoryChannel.Create(name, 512 * 1024, true));
            var consumers = Enumerable.Range(0, 2).Select(_ => Track(SharedMemoryChannel.Open(name))).ToArray();
            var seen = new ConcurrentDictionary<int, int>();
            int total = 0;
            // The lengths change from record to record, so an array made for one record often does not fit the
            // record a consumer finds when it comes back with it (the other consumer took that one meanwhile).
            var consumerTasks = consumers.Select(c => Background.Run(() =>
            {
                var into = new List<IpcMessage>();
                while (Volatile.Read(ref total) < count)
                {
                    into.Clear();
                    int n = c.Receive(into, 10, Deadline.After(TimeSpan.FromMilliseconds(200)), CancellationToken.None);
                    foreach (IpcMessage m in into)
                    {
                        int id = BitConverter.ToInt32(m.Payload, 0);
                        Assert.Equal(85_000 + (id % 7) * 1000, m.Payload.Length);
                        Assert.True(m.Payload.AsSpan(4).IndexOfAnyExcept((byte)id) < 0, $"message {id} was changed");
                        seen.AddOrUpdate(id, 1, (_, v) => v + 1);
                    }
                    if (n > 0) Interlocked.Add(ref total, n);
                }
            })).ToArray();
            Task sending = Background.Run(() =>
            {
                for (int id = 0; id < count; id++)
                {
                    var payload = new byte[85_000 + (id % 7) * 1000];
                    Array.Fill(payload, (byte)id);
                    BitConverter.GetBytes(id).CopyTo(payload, 0);
                    producer.Send(MessageFormat.Bytes, payload, Deadline.After(Wire.Patience), CancellationToken.None);
                }
            });
            await Task.WhenAll(consumerTasks.Append(sending)).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(count, seen.Count);
            Assert.All(seen.Values, v => Assert.Equal(1, v));
            Assert.Equal(0, ((SharedMemoryQueue)producer).Count);
        }

        [Fact]
        public async Task ThreeProducersAndTwoConsumersLoseAndDuplicateNothing()
        {
            string name = NewName();
            const int perProducer = 20000;
            var creator = Track(SharedMemoryChannel.Create(name, 4096, true)); // small ring: lots of full/empty waits
            var producers = Enumerable.Range(0, 3).Select(_ => Track(SharedMemoryChannel.Open(name))).ToArray();
            var consumers = Enumerable.Range(0, 2).Select(_ => Track(SharedMemoryChannel.Open(name))).ToArray();
            var seen = new ConcurrentDictionary<string, int>();
            int total = 0;
            var consumerTasks = consumers.Select(c => Background.Run(() =>
            {
                var into = new List<IpcMessage>();
                while (Volatile.Read(ref total) < 3 * perProducer)
                {
                    into.Clear();
                    int n = c.Receive(into, 100, Deadline.After(TimeSpan.FromMilliseconds(200)), CancellationToken.None);
                    foreach (IpcMessage m in into) seen.AddOrUpdate(m.GetText(), 1, (_, v) => v + 1);
                    if (n > 0) Interlocked.Add(ref total, n);
                }
            })).ToArray();
            var producerTasks = producers.Select((p, id) => Background.Run(() =>
            {
                for (int i = 0; i < perProducer; i++) Send(p, $"{id}:{i}");
            })).ToArray();
            await Task.WhenAll(producerTasks.Concat(consumerTasks)).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(3 * perProducer, seen.Count);
            Assert.All(seen.Values, v => Assert.Equal(1, v));
            Assert.Equal(0, ((SharedMemoryQueue)creator).Count);
        }
    }
}
