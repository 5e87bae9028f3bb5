using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;
using PsIpc.TestTransport;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// The public channel contract, seen from a transport that lives in another assembly
    /// (tests/PsIpc.TestTransport): what the base class does for every transport.
    /// </summary>
    public class ChannelContractTests
    {
        private static LoopbackChannel[] Pair(bool authenticated = false) =>
            LoopbackChannel.CreatePair("contract-" + Guid.NewGuid().ToString("N").Substring(0, 8), authenticated);

        [Fact]
        public void AChannelFromAnotherAssemblySendsAndReceivesThroughTheBaseClass()
        {
            LoopbackChannel[] pair = Pair();
            using LoopbackChannel server = pair[0], client = pair[1];

            client.Send(MessageFormat.Text, Encoding.UTF8.GetBytes("hello"), Deadline.Infinite, CancellationToken.None);
            var into = new List<IpcMessage>();
            int n = server.Receive(into, 10, Deadline.After(TimeSpan.FromSeconds(30)), CancellationToken.None);

            Assert.Equal(1, n);
            Assert.Equal("hello", into[0].GetText());
            Assert.Same(client, into[0].Sender);
            Assert.Equal(ChannelKind.Other, server.Kind);
            Assert.Equal(1, client.MessagesSent);
            Assert.Equal(1, server.MessagesReceived);
            Assert.Contains(server, ChannelRegistry.Snapshot());
        }

        [Fact]
        public void ReturnedMessagesComeBackFirstWithoutTheTransportKnowing()
        {
            LoopbackChannel[] pair = Pair();
            using LoopbackChannel server = pair[0], client = pair[1];
            foreach (string s in new[] { "a", "b", "c" })
            {
                client.Send(MessageFormat.Text, Encoding.UTF8.GetBytes(s), Deadline.Infinite, CancellationToken.None);
            }
            var batch = new List<IpcMessage>();
            Assert.Equal(3, server.Receive(batch, 10, Deadline.After(TimeSpan.FromSeconds(30)), CancellationToken.None));

            server.ReturnUnreceived(batch, 1); // "a" was delivered, "b" and "c" were not

            var again = new List<IpcMessage>();
            Assert.Equal(2, server.Receive(again, 10, Deadline.After(TimeSpan.Zero), CancellationToken.None));
            Assert.Equal(new[] { "b", "c" }, again.Select(m => m.GetText()));
        }

        [Fact]
        public void ClosedChannelsAndTheEndOfTheStreamAreReportedByTheBaseClass()
        {
            LoopbackChannel[] pair = Pair();
            LoopbackChannel server = pair[0], client = pair[1];
            int closing = 0, closed = 0;
            client.Closing += (_, __) => closing++;
            client.Closed += (_, __) => closed++;

            client.Close(Deadline.Infinite);
            client.Close(Deadline.Infinite); // idempotent

            Assert.Equal(1, closing);
            Assert.Equal(1, closed);
            Assert.Equal(-1, server.Receive(new List<IpcMessage>(), 1, Deadline.After(TimeSpan.FromSeconds(30)), CancellationToken.None));
            var e = Assert.Throws<IpcException>(() => client.Send(MessageFormat.Text, new byte[1], Deadline.Infinite, CancellationToken.None));
            Assert.Equal(IpcErrorKind.ChannelClosed, e.Kind);
            Assert.DoesNotContain(client, ChannelRegistry.Snapshot());
            server.Dispose();
        }

        [Fact]
        public void ACapabilityTheChannelLacksFailsWithItsErrorBeforeTheTransportIsCalled()
        {
            var probe = new SendOnlyChannel();

            var e = Assert.Throws<IpcException>(() => probe.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, CancellationToken.None));

            Assert.Equal(IpcErrorKind.OperationNotSupported, e.Kind);
            Assert.Equal(0, probe.ReceiveCalls);
            Assert.Contains("cannot receive", e.Message);
        }

        [Fact]
        public void CliXmlIsAcceptedOnlyFromChannelsThatSayTheirPeerIsAuthenticated()
        {
            LoopbackChannel[] open = Pair(authenticated: false), known = Pair(authenticated: true);
            try
            {
                Assert.False(open[0].AcceptsCliXml);
                Assert.True(known[0].AcceptsCliXml);
                Assert.False(new SendOnlyChannel().AcceptsCliXml); // the contract's default: refused until a transport can tell
            }
            finally
            {
                foreach (LoopbackChannel c in open.Concat(known)) c.Dispose();
            }
        }

        [Fact]
        public void ReceiveWaitsEndAtCancellation()
        {
            LoopbackChannel[] pair = Pair();
            using LoopbackChannel server = pair[0], client = pair[1];
            using var cts = new CancellationTokenSource();
            var receiving = System.Threading.Tasks.Task.Run(() =>
                server.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, cts.Token));

            cts.Cancel();

            Assert.ThrowsAny<OperationCanceledException>(() => receiving.GetAwaiter().GetResult());
        }

        private sealed class SendOnlyChannel : IpcChannel
        {
            public SendOnlyChannel() : base("send-only", ChannelKind.Other, ChannelRole.Client, null) { }
            public int ReceiveCalls { get; private set; }
            public override ChannelState State => ChannelState.Connected;
            public override int PeerCount => 1;
            public override string Address => "nowhere";
            public override bool CanReceive => false;
            protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken) { }
            protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
            {
                ReceiveCalls++;
                return 0;
            }
            protected override void CloseCore(Deadline deadline) { }
        }
    }
}
