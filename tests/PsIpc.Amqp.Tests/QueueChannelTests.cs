using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using RabbitMQ.Client;
using Xunit;

namespace PsIpc.Amqp.Tests
{
    /// <summary>The queue channel against the test broker: formats, confirms, acknowledgements, fan-out.</summary>
    public class QueueChannelTests
    {
        private static readonly TestBroker Broker = TestBroker.Instance;
        private static Deadline Soon => Deadline.After(TimeSpan.FromSeconds(30));

        private static void SendText(IpcChannel channel, params string[] texts)
        {
            foreach (string text in texts) channel.Send(MessageFormat.Text, Encoding.UTF8.GetBytes(text), Soon, default);
            channel.Flush(Soon, default);
        }

        /// <summary>Receives exactly <paramref name="count"/> messages (acknowledging each unless told not to).</summary>
        private static List<IpcMessage> ReceiveAll(IpcChannel channel, int count, bool acknowledge = true)
        {
            var all = new List<IpcMessage>();
            while (all.Count < count)
            {
                var batch = new List<IpcMessage>();
                int n = channel.Receive(batch, count - all.Count, Soon, default);
                Assert.True(n > 0, $"timed out after {all.Count} of {count} messages");
                if (acknowledge) foreach (IpcMessage m in batch) channel.Acknowledge(m);
                all.AddRange(batch);
            }
            return all;
        }

        [Fact]
        public void FormatsArriveAsTheyWereSentWithTheirContentTypes()
        {
            using AmqpQueueChannel q = Broker.Connect(Broker.Options(TestBroker.UniqueName("formats")));
            q.Send(MessageFormat.Text, Encoding.UTF8.GetBytes("héllo"), Soon, default);
            q.Send(MessageFormat.Json, Encoding.UTF8.GetBytes("{\"a\":1}"), Soon, default);
            q.Send(MessageFormat.Bytes, new byte[] { 0, 1, 255 }, Soon, default);
            q.Send(MessageFormat.Text, Array.Empty<byte>(), Soon, default);
            q.Flush(Soon, default);

            List<IpcMessage> got = ReceiveAll(q, 4);
            Assert.Equal(new[] { MessageFormat.Text, MessageFormat.Json, MessageFormat.Bytes, MessageFormat.Text }, got.Select(m => m.Format));
            Assert.Equal("héllo", got[0].GetText());
            Assert.Equal(new byte[] { 0, 1, 255 }, got[2].Payload);
            Assert.Empty(got[3].Payload);
            Assert.All(got, m => Assert.Same(q, m.Sender));
            Assert.Equal(4, q.MessagesSent);
            Assert.Equal(4, q.MessagesReceived);
        }

        [Fact]
        public async Task FlushReturnsOnceTheBrokerConfirmedEveryMessage()
        {
            string name = TestBroker.UniqueName("confirm");
            AmqpQueueOptions options = Broker.Options(name);
            options.MaxUnconfirmed = 4; // the window fills and empties many times
            using AmqpQueueChannel q = Broker.Connect(options);
            for (int i = 0; i < 50; i++) q.Send(MessageFormat.Text, Encoding.UTF8.GetBytes("m" + i), Soon, default);
            q.Flush(Soon, default);
            Assert.Equal(0, q.Unconfirmed);
            Assert.Equal(50u, await Broker.MessageCountAsync(name));
        }

        [Fact]
        public void AMessageNotAcknowledgedIsDeliveredAgainAfterTheConsumerCloses()
        {
            string name = TestBroker.UniqueName("unacked");
            using (AmqpQueueChannel producer = Broker.Connect(Broker.Options(name))) SendText(producer, "a", "b", "c");

            using (AmqpQueueChannel first = Broker.Connect(Broker.Options(name)))
            {
                List<IpcMessage> got = ReceiveAll(first, 3, acknowledge: false);
                first.Acknowledge(got[0]); // only "a" reached its pipeline
            }
            using AmqpQueueChannel second = Broker.Connect(Broker.Options(name));
            List<IpcMessage> again = ReceiveAll(second, 2);
            Assert.Equal(new[] { "b", "c" }, again.Select(m => m.GetText()));
            Assert.All(again, m => Assert.True(((DeliveryToken)m.DeliveryToken!).Redelivered));
            var none = new List<IpcMessage>();
            Assert.Equal(0, second.Receive(none, 10, Deadline.After(TimeSpan.FromMilliseconds(300)), default));
        }

        [Fact]
        public void MessagesTakenButNotWrittenGoBackToTheQueue()
        {
            string name = TestBroker.UniqueName("returned");
            using AmqpQueueChannel q = Broker.Connect(Broker.Options(name));
            SendText(q, "1", "2", "3");
            List<IpcMessage> got = ReceiveAll(q, 3, acknowledge: false);
            q.Acknowledge(got[0]);
            q.ReturnUnreceived(got, 1);

            List<IpcMessage> again = ReceiveAll(q, 2);
            Assert.Equal(new[] { "2", "3" }, again.Select(m => m.GetText()).OrderBy(t => t));
        }

        [Fact]
        public async Task AnUndecodableMessageGoesToTheDeadLetterQueue()
        {
            string name = TestBroker.UniqueName("dl"), dead = name + ".dead";
            AmqpQueueOptions options = Broker.Options(name);
            options.DeadLetterQueue = dead;
            using AmqpQueueChannel q = Broker.Connect(options);
            Assert.True(q.HasDeadLetterQueue);
            SendText(q, "not what the consumer expects");
            IpcMessage m = ReceiveAll(q, 1, acknowledge: false)[0];
            q.Reject(m, new FormatException("cannot decode"));

            using AmqpQueueChannel dlq = Broker.Connect(Broker.Options(dead));
            Assert.Equal("not what the consumer expects", ReceiveAll(dlq, 1)[0].GetText());
            Assert.Equal(0u, await Broker.MessageCountAsync(name));
        }

        [Fact]
        public void WithoutADeadLetterQueueARejectedMessageIsKeptNotDropped()
        {
            string name = TestBroker.UniqueName("keep");
            using (AmqpQueueChannel q = Broker.Connect(Broker.Options(name)))
            {
                SendText(q, "poison");
                q.Reject(ReceiveAll(q, 1, acknowledge: false)[0], new FormatException("cannot decode"));
            }
            using AmqpQueueChannel again = Broker.Connect(Broker.Options(name));
            Assert.Equal("poison", ReceiveAll(again, 1)[0].GetText());
        }

        [Fact]
        public void AKeptMessageIsNotCoveredByTheAcknowledgementsOfLaterOnes()
        {
            string name = TestBroker.UniqueName("keep-between");
            using (AmqpQueueChannel q = Broker.Connect(Broker.Options(name)))
            {
                SendText(q, "a", "poison", "b", "c");
                List<IpcMessage> got = ReceiveAll(q, 4, acknowledge: false);
                q.Acknowledge(got[0]);
                q.Reject(got[1], new FormatException("cannot decode")); // no dead-letter queue: kept
                q.Acknowledge(got[2]);
                q.Acknowledge(got[3]);
            }
            using AmqpQueueChannel again = Broker.Connect(Broker.Options(name));
            Assert.Equal(new[] { "poison" }, ReceiveAll(again, 1).Select(m => m.GetText()));
            var none = new List<IpcMessage>();
            Assert.Equal(0, again.Receive(none, 10, Deadline.After(TimeSpan.FromMilliseconds(300)), default));
        }

        [Fact]
        public void AcknowledgementsReachTheBrokerWithoutAnotherReceive()
        {
            string name = TestBroker.UniqueName("ack-later");
            AmqpQueueOptions options = Broker.Options(name);
            options.Prefetch = 100; // a batch would be 50: these three go out on the timer
            using AmqpQueueChannel q = Broker.Connect(options);
            SendText(q, "1", "2", "3");
            foreach (IpcMessage m in ReceiveAll(q, 3, acknowledge: false)) q.Acknowledge(m);
            // The channel stays open and receives nothing more; the broker still learns they are done.
            Deadline giveUp = Soon;
            int unacknowledged;
            while ((unacknowledged = Broker.Unacknowledged(name)) != 0 && !giveUp.HasExpired) { }
            Assert.Equal(0, unacknowledged);
        }

        [Fact]
        public void ConsumersOfOneQueueShareItsMessages()
        {
            string name = TestBroker.UniqueName("shared");
            AmqpQueueOptions options = Broker.Options(name);
            options.Prefetch = 1;
            using AmqpQueueChannel a = Broker.Connect(options), b = Broker.Connect(options);
            var fromA = new List<IpcMessage>();
            Assert.Equal(0, a.Receive(fromA, 1, Deadline.After(TimeSpan.Zero), default)); // both consume now
            Assert.Equal(0, b.Receive(fromA, 1, Deadline.After(TimeSpan.Zero), default));
            SendText(a, Enumerable.Range(0, 20).Select(i => i.ToString()).ToArray());

            // Each holds one unacknowledged message at a time: neither can take them all.
            var seen = new List<string>();
            int tookA = 0, tookB = 0;
            Deadline giveUp = Soon;
            while (seen.Count < 20)
            {
                Assert.False(giveUp.HasExpired, $"only {seen.Count} of 20 arrived");
                foreach ((AmqpQueueChannel c, bool isA) in new[] { (a, true), (b, false) })
                {
                    var batch = new List<IpcMessage>();
                    if (c.Receive(batch, 10, Deadline.After(TimeSpan.FromMilliseconds(200)), default) <= 0) continue;
                    foreach (IpcMessage m in batch) { c.Acknowledge(m); seen.Add(m.GetText()); }
                    if (isA) tookA += batch.Count; else tookB += batch.Count;
                }
            }
            Assert.Equal(Enumerable.Range(0, 20).Select(i => i.ToString()).OrderBy(s => s), seen.OrderBy(s => s));
            Assert.True(tookA > 0 && tookB > 0, $"a took {tookA}, b took {tookB}");
        }

        [Fact]
        public void EverySubscriberOfAFanoutExchangeGetsEveryMessage()
        {
            string exchange = TestBroker.UniqueName("events");
            AmqpQueueOptions sub = Broker.Options(exchange: exchange);
            sub.Subscribe = true;
            using AmqpQueueChannel s1 = Broker.Connect(sub), s2 = Broker.Connect(sub);
            using AmqpQueueChannel publisher = Broker.Connect(Broker.Options(exchange: exchange));
            Assert.False(publisher.CanReceive);
            SendText(publisher, "x", "y");
            Assert.Equal(new[] { "x", "y" }, ReceiveAll(s1, 2).Select(m => m.GetText()));
            Assert.Equal(new[] { "x", "y" }, ReceiveAll(s2, 2).Select(m => m.GetText()));
        }

        [Fact]
        public void ATopicSubscriptionGetsTheRoutingKeysItIsBoundTo()
        {
            string exchange = TestBroker.UniqueName("topics");
            AmqpQueueOptions sub = Broker.Options(exchange: exchange);
            sub.ExchangeType = AmqpExchangeType.Topic;
            sub.Subscribe = true;
            sub.BindingKeys = new[] { "deploy.*" };
            using AmqpQueueChannel s = Broker.Connect(sub);
            foreach (string key in new[] { "deploy.web", "build.web", "deploy.db" })
            {
                AmqpQueueOptions pub = Broker.Options(exchange: exchange);
                pub.ExchangeType = AmqpExchangeType.Topic;
                pub.RoutingKey = key;
                using AmqpQueueChannel p = Broker.Connect(pub);
                SendText(p, key);
            }
            Assert.Equal(new[] { "deploy.web", "deploy.db" }, ReceiveAll(s, 2).Select(m => m.GetText()));
        }

        [Fact]
        public void ReceiveReturnsZeroAtItsDeadlineAndStopsWhenCancelled()
        {
            using AmqpQueueChannel q = Broker.Connect(Broker.Options(TestBroker.UniqueName("empty")));
            var into = new List<IpcMessage>();
            Assert.Equal(0, q.Receive(into, 1, Deadline.After(TimeSpan.FromMilliseconds(100)), default));
            using var cts = new CancellationTokenSource();
            Task<int> waiting = Task.Run(() => q.Receive(into, 1, Deadline.Infinite, cts.Token));
            cts.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() => waiting.GetAwaiter().GetResult());
        }
    }
}
