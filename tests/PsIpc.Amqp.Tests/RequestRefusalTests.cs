using System;
using System.Collections.Generic;
using System.Text;
using System.Threading.Tasks;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using RabbitMQ.Client;
using Xunit;

namespace PsIpc.Amqp.Tests
{
    /// <summary>
    /// A request on a queue channel whose sends land in the queue it consumes would read itself back: refused before
    /// anything is published. A channel that sends one way and consumes another still makes requests.
    /// </summary>
    public class RequestRefusalTests
    {
        private static TestBroker Broker => TestBroker.Instance;
        private static Deadline Soon => Deadline.After(TimeSpan.FromSeconds(30));

        [Theory]
        [InlineData(AmqpExchangeType.Fanout, "anything", "other", true)]
        [InlineData(AmqpExchangeType.Direct, "jobs", "jobs", true)]
        [InlineData(AmqpExchangeType.Direct, "requests", "replies", false)]
        [InlineData(AmqpExchangeType.Topic, "deploy.web", "deploy.*", true)]
        [InlineData(AmqpExchangeType.Topic, "deploy.web.eu", "deploy.*", false)]
        [InlineData(AmqpExchangeType.Topic, "deploy.web.eu", "deploy.#", true)]
        [InlineData(AmqpExchangeType.Topic, "deploy", "deploy.#", true)]
        [InlineData(AmqpExchangeType.Topic, "a.b.c", "#.c", true)]
        [InlineData(AmqpExchangeType.Topic, "a.b.c", "*.c", false)]
        [InlineData(AmqpExchangeType.Topic, "requests", "replies.#", false)]
        [InlineData(AmqpExchangeType.Topic, "", "#", true)]
        public void BindingRoutesAsTheBrokerDoes(AmqpExchangeType type, string routingKey, string bindingKey, bool routes) =>
            Assert.Equal(routes, AmqpTopology.BindingRoutes(type, new[] { bindingKey }, routingKey));

        [Fact]
        public async Task AWorkQueueRefusesARequestAndLeavesTheQueueAsItWas()
        {
            string queue = TestBroker.UniqueName("self-request");
            using AmqpQueueChannel q = Broker.Connect(Broker.Options(queue));
            q.Send(MessageFormat.Text, Encoding.UTF8.GetBytes("queued before"), Soon, default);
            q.Flush(Soon, default);
            Assert.False(q.CanRequest);
            var e = Assert.Throws<IpcException>(() => q.Request(MessageFormat.Text, Encoding.UTF8.GetBytes("request"), Soon, default));
            Assert.Equal(IpcErrorKind.OperationNotSupported, e.Kind);
            Assert.Contains("Nothing was sent", e.Message);
            Assert.Contains("two queues", e.Message);
            Assert.Equal(1, q.MessagesSent);
            Assert.Equal(1u, await Broker.MessageCountAsync(queue));
            var got = new List<IpcMessage>();
            Assert.Equal(1, q.Receive(got, 10, Soon, default));
            Assert.Equal("queued before", got[0].GetText());
        }

        [Fact]
        public void AFanoutSubscriberRefusesARequest()
        {
            AmqpQueueOptions sub = Broker.Options(exchange: TestBroker.UniqueName("self-fanout"));
            sub.Subscribe = true;
            using AmqpQueueChannel s = Broker.Connect(sub);
            Assert.False(s.CanRequest);
            var e = Assert.Throws<IpcException>(() => s.Request(MessageFormat.Text, Encoding.UTF8.GetBytes("request"), Soon, default));
            Assert.Equal(IpcErrorKind.OperationNotSupported, e.Kind);
            Assert.Equal(0, s.MessagesSent);
        }

        [Fact]
        public async Task AChannelThatSendsOneWayAndConsumesAnotherStillMakesRequests()
        {
            // Requests go out with routing key "requests", replies come back on "replies": two queues, one each way.
            string exchange = TestBroker.UniqueName("rpc");
            AmqpQueueOptions Side(string sendKey, string consumeKey)
            {
                AmqpQueueOptions o = Broker.Options(TestBroker.UniqueName(consumeKey), exchange);
                o.ExchangeType = AmqpExchangeType.Direct;
                o.RoutingKey = sendKey;
                o.BindingKeys = new[] { consumeKey };
                return o;
            }
            using AmqpQueueChannel client = Broker.Connect(Side("requests", "replies"));
            using AmqpQueueChannel server = Broker.Connect(Side("replies", "requests"));
            Assert.True(client.CanRequest);
            Task serving = Task.Run(() =>
            {
                var into = new List<IpcMessage>();
                while (server.Receive(into, 1, Soon, default) == 0) { }
                server.Acknowledge(into[0]);
                server.Send(MessageFormat.Text, Encoding.UTF8.GetBytes("re: " + into[0].GetText()), Soon, default);
                server.Flush(Soon, default);
            });
            IpcMessage reply = client.Request(MessageFormat.Text, Encoding.UTF8.GetBytes("ping"), Soon, default);
            client.Acknowledge(reply);
            Assert.Equal("re: ping", reply.GetText());
            await serving.WaitAsync(TimeSpan.FromSeconds(60));
        }
    }
}
