using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Tasks;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using RabbitMQ.Client;
using Xunit;

namespace PsIpc.Amqp.Tests
{
    /// <summary>Bad input and broker failures: each a clear error kind, within the timeout, before anything is sent.</summary>
    public class QueueFaultTests
    {
        private static readonly TestBroker Broker = TestBroker.Instance;
        private static Deadline Soon => Deadline.After(TimeSpan.FromSeconds(30));

        private static IpcException Fails(AmqpQueueOptions options, double timeoutSeconds = 10) =>
            Assert.Throws<IpcException>(() => AmqpQueueChannel.Connect(options, Deadline.After(TimeSpan.FromSeconds(timeoutSeconds)), default));

        private static int ClosedPort()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }

        [Fact]
        public void NoBrokerListeningIsBrokerUnreachableWithinTheTimeout()
        {
            AmqpQueueOptions options = Broker.Options("q");
            options.Uri = $"amqp://127.0.0.1:{ClosedPort()}/";
            IpcException e = Fails(options, timeoutSeconds: 1);
            Assert.Equal(IpcErrorKind.BrokerUnreachable, e.Kind);
            Assert.Equal("q", e.Target);
        }

        [Fact]
        public void AWrongPasswordIsAuthenticationFailed()
        {
            AmqpQueueOptions options = Broker.Options("q");
            options.UserName = "guest";
            options.Password = "not-the-password";
            Assert.Equal(IpcErrorKind.AuthenticationFailed, Fails(options).Kind);
        }

        [Fact]
        public void AnUnknownVirtualHostIsAccessDenied()
        {
            AmqpQueueOptions options = Broker.Options("q");
            options.Uri = Broker.Uri + "no-such-vhost";
            Assert.Equal(IpcErrorKind.AccessDenied, Fails(options).Kind);
        }

        [Fact]
        public void ANonAmqpUriIsRefusedBeforeConnecting()
        {
            AmqpQueueOptions options = Broker.Options("q");
            options.Uri = "http://localhost/";
            Assert.Equal(IpcErrorKind.HostNotFound, Fails(options).Kind);
        }

        [Fact]
        public void AMissingQueueOrExchangeIsNotFoundWhenItMustExist()
        {
            AmqpQueueOptions queue = Broker.Options(TestBroker.UniqueName("missing"));
            queue.MustExist = true;
            Assert.Equal(IpcErrorKind.QueueNotFound, Fails(queue).Kind);

            AmqpQueueOptions exchange = Broker.Options(exchange: TestBroker.UniqueName("missing"));
            exchange.MustExist = true;
            Assert.Equal(IpcErrorKind.ExchangeNotFound, Fails(exchange).Kind);
        }

        [Fact]
        public void AQueueDeclaredWithOtherSettingsIsAConflict()
        {
            string name = TestBroker.UniqueName("conflict");
            using (Broker.Connect(Broker.Options(name))) { }
            AmqpQueueOptions options = Broker.Options(name);
            options.DeadLetterQueue = name + ".dead";
            Assert.Equal(IpcErrorKind.QueueSettingsConflict, Fails(options).Kind);
        }

        [Fact]
        public void AMessageOverTheLimitIsRefusedBeforeItIsSent()
        {
            AmqpQueueOptions options = Broker.Options(TestBroker.UniqueName("big"));
            options.MaxMessageSize = 1000;
            using AmqpQueueChannel q = Broker.Connect(options);
            q.Send(MessageFormat.Bytes, new byte[1000], Soon, default);
            IpcException e = Assert.Throws<IpcException>(() => q.Send(MessageFormat.Bytes, new byte[1001], Soon, default));
            Assert.Equal(IpcErrorKind.MessageTooLarge, e.Kind);
            q.Flush(Soon, default);
            Assert.Equal(1, q.MessagesSent);
        }

        [Fact]
        public void CliXmlIsSentOnlyWhenAllowed()
        {
            using AmqpQueueChannel q = Broker.Connect(Broker.Options(TestBroker.UniqueName("clixml")));
            Assert.False(q.AcceptsCliXml);
            IpcException e = Assert.Throws<IpcException>(() => q.Send(MessageFormat.CliXml, Encoding.UTF8.GetBytes("<Objs/>"), Soon, default));
            Assert.Equal(IpcErrorKind.OperationNotSupported, e.Kind);

            AmqpQueueOptions allowed = Broker.Options(TestBroker.UniqueName("clixml"));
            allowed.AllowCliXml = true;
            using AmqpQueueChannel a = Broker.Connect(allowed);
            Assert.True(a.AcceptsCliXml);
            a.Send(MessageFormat.CliXml, Encoding.UTF8.GetBytes("<Objs/>"), Soon, default);
            var into = new List<IpcMessage>();
            Assert.Equal(1, a.Receive(into, 1, Soon, default));
            Assert.Equal(MessageFormat.CliXml, into[0].Format);
        }

        [Fact]
        public async Task SendingToAQueueThatWasDeletedIsPublishNotConfirmed()
        {
            string name = TestBroker.UniqueName("deleted");
            using AmqpQueueChannel q = Broker.Connect(Broker.Options(name));
            (IConnection connection, IChannel channel) = await Broker.RawAsync();
            await using (connection)
            await using (channel)
            {
                await channel.QueueDeleteAsync(name, ifUnused: false, ifEmpty: false);
            }
            q.Send(MessageFormat.Text, Encoding.UTF8.GetBytes("lost?"), Soon, default);
            IpcException e = Assert.Throws<IpcException>(() => q.Flush(Soon, default));
            Assert.Equal(IpcErrorKind.PublishNotConfirmed, e.Kind);
            Assert.Contains("could not be routed", e.Message);
        }

        [Fact]
        public async Task AConsumerWhoseQueueIsDeletedIsToldSo()
        {
            string name = TestBroker.UniqueName("gone");
            using AmqpQueueChannel q = Broker.Connect(Broker.Options(name));
            var into = new List<IpcMessage>();
            Assert.Equal(0, q.Receive(into, 1, Deadline.After(TimeSpan.Zero), default)); // consuming now
            (IConnection connection, IChannel channel) = await Broker.RawAsync();
            await using (connection)
            await using (channel)
            {
                await channel.QueueDeleteAsync(name, ifUnused: false, ifEmpty: false);
            }
            IpcException e = Assert.Throws<IpcException>(() => q.Receive(into, 1, Soon, default));
            Assert.Equal(IpcErrorKind.QueueNotFound, e.Kind);
        }

        [Fact]
        public void TlsWorksWithAPinnedCertificateAndRefusesAnUntrustedOne()
        {
            string name = TestBroker.UniqueName("tls");
            AmqpQueueOptions untrusted = Broker.Options(name);
            untrusted.Uri = Broker.TlsUri;
            IpcException e = Fails(untrusted);
            Assert.Equal(IpcErrorKind.AuthenticationFailed, e.Kind);
            Assert.Contains("not trusted", e.Message);

            AmqpQueueOptions pinned = Broker.Options(name);
            pinned.Uri = Broker.TlsUri;
            pinned.CertificateThumbprint = Broker.CertificateThumbprint;
            using AmqpQueueChannel q = Broker.Connect(pinned);
            q.Send(MessageFormat.Text, Encoding.UTF8.GetBytes("over tls"), Soon, default);
            var into = new List<IpcMessage>();
            Assert.Equal(1, q.Receive(into, 1, Soon, default));
            Assert.Equal("over tls", into[0].GetText());
            Assert.StartsWith("amqps://", q.Address);
        }
    }
}
