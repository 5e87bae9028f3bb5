using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>Pipe server and client over real Unix domain sockets, in this process.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class PipeChannelTests
    {
        private static PipeServerChannel Server(Cleanup cleanup, string? name, int maxClients = 1, ChannelOptions? options = null) =>
            cleanup.Add(new PipeServerChannel(name, maxClients, options));

        private static PipeClientChannel Client(Cleanup cleanup, string name, ChannelOptions? options = null) =>
            cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None, options));

        private static void SendText(IpcChannel channel, string text) =>
            channel.Send(MessageFormat.Text, Wire.Text(text), Wire.PatientDeadline(), CancellationToken.None);

        /// <summary>A raw client that has said a valid Hello and read the server's Hello back.</summary>
        private static Socket HandshakenRawClient(Cleanup cleanup, string name)
        {
            Socket raw = cleanup.Add(Wire.RawConnect(name));
            Wire.SendAll(raw, Wire.HelloFrame());
            Frame hello = Wire.ReadFrame(raw);
            Assert.Equal(FrameType.Hello, hello.Type);
            Assert.NotNull(Hello.TryParse(hello.Payload));
            return raw;
        }

        [Fact]
        public void ServerAndClientExchangeMessagesBothWays()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);

            SendText(client, "ping");
            IpcMessage request = Rx.NextMessage(server);
            Assert.Equal(MessageFormat.Text, request.Format);
            Assert.Equal("ping", request.GetText());
            IpcPeer peer = Assert.IsType<IpcPeer>(request.Sender);
            Assert.Same(server, peer.Server);
            Assert.Equal(Environment.ProcessId, peer.PeerProcessId);

            SendText(peer, "pong");                               // a reply to that peer
            server.Send(MessageFormat.Json, Wire.Text("{}"), Wire.PatientDeadline(), CancellationToken.None); // a broadcast

            IpcMessage reply = Rx.NextMessage(client);
            Assert.Equal("pong", reply.GetText());
            Assert.Same(client, reply.Sender);
            IpcMessage broadcast = Rx.NextMessage(client);
            Assert.Equal(MessageFormat.Json, broadcast.Format);
            Assert.Equal("{}", broadcast.GetText());
            Assert.Equal(Environment.ProcessId, client.PeerProcessId);
        }

        [Fact]
        public void BothEndsSayTheirPeerIsAuthenticatedSoCliXmlIsAccepted()
        {
            // A pipe's peer runs as this user (checked by the system when it connects).
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);
            SendText(client, "who");
            IpcChannel peer = Rx.NextMessage(server).Sender;
            Assert.True(peer.IsAuthenticated);
            Assert.True(peer.AcceptsCliXml);
            Assert.True(client.IsAuthenticated);
            Assert.True(client.AcceptsCliXml);
        }

        [Fact]
        public void StateAndCountersFollowTheConversation()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Assert.Equal(ChannelState.Listening, server.State);
            Assert.Equal(ChannelRole.Server, server.Role);
            Assert.Equal(ChannelKind.Pipe, server.Kind);
            Assert.Equal(Wire.SocketPath(name), server.Address);

            PipeClientChannel client = Client(cleanup, name);
            Assert.Equal(ChannelState.Connected, client.State);
            Assert.Equal(ChannelRole.Client, client.Role);
            SendText(client, "12345");
            Rx.NextMessage(server);

            Assert.Equal(ChannelState.Connected, server.State);
            Assert.Equal(1, server.PeerCount);
            Assert.Equal(1, server.ClientsAccepted);
            Assert.Single(server.Peers);
            Assert.Equal(1, client.MessagesSent);
            Assert.Equal(5, client.BytesSent);
            // Deliver() counts a batch after queueing it: a receiver can be a moment ahead of the counters.
            SpinWait.SpinUntil(() => server.BytesReceived == 5, Wire.Patience);
            Assert.Equal(1, server.MessagesReceived);
            Assert.Equal(5, server.BytesReceived);

            client.Close(Wire.PatientDeadline());
            Assert.Equal(ChannelState.Closed, client.State);
            Assert.True(client.IsClosed);
        }

        [Fact]
        public async Task HundredThousandSmallMessagesArriveInOrderWithNoneLost()
        {
            const int count = 100_000;
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);

            Task sender = Background.Run(() =>
            {
                var payload = new byte[4];
                for (int i = 0; i < count; i++)
                {
                    BitConverter.TryWriteBytes(payload, i);
                    client.Send(MessageFormat.Bytes, (byte[])payload.Clone(), Wire.PatientDeadline(), CancellationToken.None);
                }
                client.Close(Wire.PatientDeadline()); // flushes, says goodbye
            });

            var batch = new List<IpcMessage>();
            int expected = 0;
            while (true)
            {
                batch.Clear();
                int n = server.Receive(batch, 1000, Wire.PatientDeadline(), CancellationToken.None);
                Assert.NotEqual(0, n);
                if (n < 0) break;
                foreach (IpcMessage m in batch)
                {
                    Assert.Null(m.Fault);
                    Assert.Equal(expected, BitConverter.ToInt32(m.Payload));
                    expected++;
                }
            }
            await sender.WaitAsync(Wire.Patience);
            Assert.Equal(count, expected);
            SpinWait.SpinUntil(() => server.MessagesReceived == count, Wire.Patience);
            Assert.Equal(count, server.MessagesReceived);
        }

        [Fact]
        public void OneMebibytePayloadArrivesExactlyInBothDirections()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);
            var up = new byte[1024 * 1024];
            var down = new byte[1024 * 1024];
            new Random(1).NextBytes(up);
            new Random(2).NextBytes(down);

            client.Send(MessageFormat.Bytes, up, Wire.PatientDeadline(), CancellationToken.None);
            IpcMessage atServer = Rx.NextMessage(server);
            atServer.Sender.Send(MessageFormat.Bytes, down, Wire.PatientDeadline(), CancellationToken.None);
            IpcMessage atClient = Rx.NextMessage(client);

            Assert.Equal(MessageFormat.Bytes, atServer.Format);
            Assert.True(up.AsSpan().SequenceEqual(atServer.Payload), "client to server payload differs");
            Assert.True(down.AsSpan().SequenceEqual(atClient.Payload), "server to client payload differs");
        }

        [Fact]
        public void EmptyMessageArrivesAsAnEmptyPayload()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);

            client.Send(MessageFormat.Text, Array.Empty<byte>(), Wire.PatientDeadline(), CancellationToken.None);
            SendText(client, "after");

            IpcMessage empty = Rx.NextMessage(server);
            Assert.NotNull(empty.Payload);
            Assert.Empty(empty.Payload);
            Assert.Equal("after", Rx.NextMessage(server).GetText());
        }

        [Fact]
        public async Task ReceiveMergesThreeClientsAndEndsAfterAllThreeClosed()
        {
            const int perClient = 200;
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name, maxClients: 3);
            PipeClientChannel[] clients = Enumerable.Range(0, 3).Select(_ => Client(cleanup, name)).ToArray();

            Task[] senders = clients.Select((client, c) => Background.Run(() =>
            {
                for (int i = 0; i < perClient; i++) SendText(client, $"{c}:{i}");
                client.Close(Wire.PatientDeadline());
            })).ToArray();

            var next = new int[3];
            var senderOf = new IpcChannel[3];
            var batch = new List<IpcMessage>();
            int n;
            while ((n = server.Receive(batch, 64, Wire.PatientDeadline(), CancellationToken.None)) > 0)
            {
                foreach (IpcMessage m in batch)
                {
                    Assert.Null(m.Fault);
                    string[] parts = m.GetText().Split(':');
                    int c = int.Parse(parts[0]);
                    Assert.Equal(next[c]++, int.Parse(parts[1])); // each client's messages in its order
                    senderOf[c] ??= m.Sender;
                    Assert.Same(senderOf[c], m.Sender);
                }
                batch.Clear();
            }

            Assert.Equal(-1, n);
            Assert.All(next, count => Assert.Equal(perClient, count));
            Assert.Equal(3, senderOf.Distinct().Count());
            await Task.WhenAll(senders).WaitAsync(Wire.Patience);
            Assert.Equal(0, server.PeerCount);
            Assert.Equal(3, server.ClientsAccepted);
        }

        [Fact]
        public void FourthClientOfAThreeClientServerGetsPipeBusy()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name, maxClients: 3);
            for (int i = 0; i < 3; i++) Client(cleanup, name);

            var e = Assert.Throws<IpcException>(() =>
                cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None)));

            Assert.Equal(IpcErrorKind.PipeBusy, e.Kind);
            Assert.Equal(3, server.ClientsAccepted);
            Assert.Equal(3, server.PeerCount);
        }

        [Fact]
        public void MaxClientsCountsOverTheServersLifetime()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name, maxClients: 1);
            PipeClientChannel first = Client(cleanup, name);
            first.Close(Wire.PatientDeadline());
            Rx.AssertEnded(server);

            var e = Assert.Throws<IpcException>(() =>
                cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None)));

            Assert.Equal(IpcErrorKind.PipeBusy, e.Kind);
        }

        [Fact]
        public void SecondServerOnALiveNameGetsPipeNameInUseAndTheFirstKeepsServing()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel first = Server(cleanup, name);

            var e = Assert.Throws<IpcException>(() => Server(cleanup, name));

            Assert.Equal(IpcErrorKind.PipeNameInUse, e.Kind);
            Assert.Equal(name, e.Target);
            Assert.True(File.Exists(Wire.SocketPath(name)), "the failed server must not remove the live server's socket");
            PipeClientChannel client = Client(cleanup, name);
            SendText(client, "still here");
            // The failed server's probe can show up as a fault first: ProductBugTests covers that.
            IpcMessage item;
            while ((item = Rx.Next(first)).Fault != null) Assert.Equal(IpcErrorKind.ProtocolError, item.Fault.Kind);
            Assert.Equal("still here", item.GetText());
        }

        [Fact]
        public void StaleSocketFileIsReplaced()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            string path = Wire.SocketPath(name);
            LeaveStaleSocketFile(path);

            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);

            SendText(client, "fresh");
            Assert.Equal("fresh", Rx.NextMessage(server).GetText());
        }

        [Fact]
        public void ConnectTimesOutWhenNoServerExists()
        {
            string name = Wire.UniqueName();

            var e = Assert.Throws<IpcException>(() =>
                PipeClientChannel.Connect(name, Deadline.After(TimeSpan.FromMilliseconds(100)), CancellationToken.None));

            Assert.Equal(IpcErrorKind.ConnectTimeout, e.Kind);
            Assert.True(e.IsTimeout);
            Assert.Equal(name, e.Target);
        }

        [Fact]
        public void ConnectWithDeadlineZeroPollsOnce()
        {
            var e = Assert.Throws<IpcException>(() =>
                PipeClientChannel.Connect(Wire.UniqueName(), Deadline.After(TimeSpan.Zero), CancellationToken.None));

            Assert.Equal(IpcErrorKind.ConnectTimeout, e.Kind);
        }

        [Fact]
        public void ConnectTimesOutOnAStaleSocketFileNobodyListensOn()
        {
            string name = Wire.UniqueName();
            string path = Wire.SocketPath(name);
            LeaveStaleSocketFile(path);
            try
            {
                var e = Assert.Throws<IpcException>(() =>
                    PipeClientChannel.Connect(name, Deadline.After(TimeSpan.FromMilliseconds(100)), CancellationToken.None));

                Assert.Equal(IpcErrorKind.ConnectTimeout, e.Kind);
                Assert.Contains("nobody listens", e.Message);
            }
            finally
            {
                File.Delete(path);
            }
        }

        [Fact]
        public async Task ConnectWaitsForAServerThatStartsLater()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            Task<PipeClientChannel> connecting = Background.Run(() =>
                PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None));
            await Background.AssertStillBlocked(connecting);

            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = cleanup.Add(await Background.Finishes(connecting));

            SendText(client, "late");
            Assert.Equal("late", Rx.NextMessage(server).GetText());
        }

        [Fact]
        public async Task CancellationStopsAConnectThatIsWaitingForAServer()
        {
            using var cts = new CancellationTokenSource();
            Task<PipeClientChannel> connecting = Background.Run(() =>
                PipeClientChannel.Connect(Wire.UniqueName(), Deadline.Infinite, cts.Token));
            await Background.AssertStillBlocked(connecting);

            cts.Cancel();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connecting.WaitAsync(Wire.Patience));
        }

        [Fact]
        public async Task CancellationStopsABlockedReceiveOnServerAndClient()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);
            using var cts = new CancellationTokenSource();

            Task<int> serverReceive = Background.Run(() => server.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, cts.Token));
            Task<int> clientReceive = Background.Run(() => client.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, cts.Token));
            await Background.AssertStillBlocked(serverReceive);
            await Background.AssertStillBlocked(clientReceive);

            cts.Cancel();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => serverReceive.WaitAsync(Wire.Patience));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => clientReceive.WaitAsync(Wire.Patience));
            // The channels are still usable after a cancelled wait.
            SendText(client, "after cancel");
            Assert.Equal("after cancel", Rx.NextMessage(server).GetText());
        }

        [Fact]
        public void ReceiveWithDeadlineZeroPollsAndReturnsZero()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            var into = new List<IpcMessage>();

            Assert.Equal(0, server.Receive(into, 10, Deadline.After(TimeSpan.Zero), CancellationToken.None));
            Assert.Empty(into);
        }

        [Fact]
        public async Task CloseWakesABlockedReceiveWithTheEnd()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Task<int> receive = Background.Run(() => server.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, CancellationToken.None));
            await Background.AssertStillBlocked(receive);

            server.Close(Wire.PatientDeadline());

            Assert.Equal(-1, await Background.Finishes(receive));
        }

        [Fact]
        public void SendAfterCloseIsChannelClosed()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);

            client.Close(Wire.PatientDeadline());
            server.Close(Wire.PatientDeadline());

            foreach (IpcChannel channel in new IpcChannel[] { client, server })
            {
                var send = Assert.Throws<IpcException>(() => SendText(channel, "late"));
                Assert.Equal(IpcErrorKind.ChannelClosed, send.Kind);
                Assert.Equal(name, send.Target);
                var receive = Assert.Throws<IpcException>(() =>
                    channel.Receive(new List<IpcMessage>(), 1, Deadline.After(TimeSpan.Zero), CancellationToken.None));
                Assert.Equal(IpcErrorKind.ChannelClosed, receive.Kind);
            }
        }

        [Fact]
        public void CloseIsIdempotentAndRaisesClosedOnce()
        {
            string name = Wire.UniqueName();
            var server = new PipeServerChannel(name, 1, null);
            int raised = 0;
            server.Closed += (_, __) => Interlocked.Increment(ref raised);

            server.Close(Wire.PatientDeadline());
            server.Close(Wire.PatientDeadline());
            server.Dispose();

            Assert.Equal(1, raised);
        }

        [Fact]
        public void ReceivingFromAPeerViewIsRefused()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);
            SendText(client, "hi");
            IpcChannel peer = Rx.NextMessage(server).Sender;

            var e = Assert.Throws<IpcException>(() => peer.Receive(new List<IpcMessage>(), 1, Deadline.After(TimeSpan.Zero), CancellationToken.None));

            Assert.Equal(IpcErrorKind.OperationNotSupported, e.Kind); // refused: a peer view sends replies only
            Assert.False(peer.CanReceive);
            Assert.Equal(ChannelRole.Peer, peer.Role);
        }

        [Fact]
        public void ClientReceivesEverythingThenTheEndWhenTheServerCloses()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);
            SendText(client, "hello"); // ensures the server has the client before it broadcasts
            Rx.NextMessage(server);

            for (int i = 0; i < 3; i++) SendText(server, "m" + i);
            server.Close(Wire.PatientDeadline());

            for (int i = 0; i < 3; i++) Assert.Equal("m" + i, Rx.NextMessage(client).GetText());
            Rx.AssertEnded(client);
            Assert.NotEqual(ChannelState.Connected, client.State); // Closed; sometimes Faulted: see ProductBugTests
            var e = Assert.Throws<IpcException>(() => SendText(client, "too late"));
            Assert.Equal(IpcErrorKind.PeerDisconnected, e.Kind);
        }

        [Fact]
        public void ServerSendWithNoClientTimesOut()
        {
            using var cleanup = new Cleanup();
            PipeServerChannel server = Server(cleanup, Wire.UniqueName());

            var e = Assert.Throws<IpcException>(() =>
                server.Send(MessageFormat.Text, Wire.Text("anyone?"), Deadline.After(TimeSpan.FromMilliseconds(50)), CancellationToken.None));

            Assert.Equal(IpcErrorKind.SendTimeout, e.Kind);
        }

        [Fact]
        public void ServerSendAfterEveryClientLeftIsPeerDisconnected()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Client(cleanup, name).Close(Wire.PatientDeadline());
            Rx.AssertEnded(server);

            var e = Assert.Throws<IpcException>(() => SendText(server, "anyone?"));

            Assert.Equal(IpcErrorKind.PeerDisconnected, e.Kind);
        }

        [Fact]
        public void SendingMoreThanThePeersMaxMessageSizeFailsAtTheSender()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name, options: new ChannelOptions { MaxMessageSize = 100 });
            PipeClientChannel client = Client(cleanup, name, new ChannelOptions { MaxMessageSize = 50 });

            client.Send(MessageFormat.Bytes, new byte[100], Wire.PatientDeadline(), CancellationToken.None);
            var up = Assert.Throws<IpcException>(() =>
                client.Send(MessageFormat.Bytes, new byte[101], Wire.PatientDeadline(), CancellationToken.None));
            IpcChannel peer = Rx.NextMessage(server).Sender;
            var down = Assert.Throws<IpcException>(() =>
                peer.Send(MessageFormat.Bytes, new byte[51], Wire.PatientDeadline(), CancellationToken.None));

            Assert.Equal(IpcErrorKind.MessageTooLarge, up.Kind);
            Assert.Equal(IpcErrorKind.MessageTooLarge, down.Kind);
            // Refused locally: the connection is fine.
            SendText(client, "ok");
            Assert.Equal("ok", Rx.NextMessage(server).GetText());
        }

        [Fact]
        public void GarbageClientIsAProtocolErrorAndTheServerKeepsServing()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = cleanup.Add(Wire.RawConnect(name));

            Wire.SendAll(raw, Wire.Text("GET / HTTP/1.1\r\n\r\n"));

            IpcException fault = Rx.NextFault(server);
            Assert.Equal(IpcErrorKind.ProtocolError, fault.Kind);
            Frame error = Wire.ReadFrame(raw); // the garbage client is told why...
            Assert.Equal(FrameType.Error, error.Type);
            Assert.Equal(2, error.Payload[0]);
            Assert.True(Wire.ReadsToEof(raw), "...and disconnected");

            PipeClientChannel client = Client(cleanup, name); // it did not use up the single client slot
            SendText(client, "proper");
            Assert.Equal("proper", Rx.NextMessage(server).GetText());
        }

        [Fact]
        public void FirstFrameOtherThanHelloIsAProtocolError()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = cleanup.Add(Wire.RawConnect(name));

            Wire.SendAll(raw, Wire.Frame(FrameType.Text, Wire.Text("no hello")));

            Assert.Equal(IpcErrorKind.ProtocolError, Rx.NextFault(server).Kind);
        }

        [Fact]
        public void HelloOfAnotherVersionIsAVersionMismatch()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = cleanup.Add(Wire.RawConnect(name));

            Wire.SendAll(raw, Wire.HelloFrame(version: 2));

            Assert.Equal(IpcErrorKind.ProtocolVersionMismatch, Rx.NextFault(server).Kind);
            Frame error = Wire.ReadFrame(raw);
            Assert.Equal(FrameType.Error, error.Type);
            Assert.Equal(4, error.Payload[0]);
        }

        [Fact]
        public void SecondHelloIsAProtocolError()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = HandshakenRawClient(cleanup, name);

            Wire.SendAll(raw, Wire.Concat(Wire.Frame(FrameType.Text, Wire.Text("one")), Wire.HelloFrame()));

            Assert.Equal("one", Rx.NextMessage(server).GetText());
            Assert.Equal(IpcErrorKind.ProtocolError, Rx.NextFault(server).Kind);
        }

        [Fact]
        public void ClientThatNeverSaysHelloIsDroppedAfterTheHandshakeTimeout()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            var options = new ChannelOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(200) };
            PipeServerChannel server = Server(cleanup, name, options: options);
            Socket silent = cleanup.Add(Wire.RawConnect(name));

            IpcException fault = Rx.NextFault(server);

            Assert.Equal(IpcErrorKind.HandshakeTimeout, fault.Kind);
            Assert.Contains("handshake", fault.Message);
            Assert.True(Wire.ReadsToEof(silent), "the silent client should be disconnected");
        }

        [Fact]
        public void AnnouncedLengthOfTwoGigabytesIsMessageTooLarge()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = cleanup.Add(Wire.RawConnect(name));

            Wire.SendAll(raw, Wire.Concat(Wire.HelloFrame(), Wire.Header(0x7FFFFFFF, (byte)FrameType.Bytes)));

            IpcException fault = Rx.NextFault(server);
            Assert.Equal(IpcErrorKind.MessageTooLarge, fault.Kind);
            Rx.AssertEnded(server); // its only client is gone
        }

        [Fact]
        public void PeerThatDiesMidFrameDeliversWhatCameBeforeThenPeerDisconnected()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = HandshakenRawClient(cleanup, name);

            byte[] third = Wire.Frame(FrameType.Bytes, new byte[100]);
            Wire.SendAll(raw, Wire.Concat(
                Wire.Frame(FrameType.Text, Wire.Text("first")),
                Wire.Frame(FrameType.Text, Wire.Text("second")),
                third[..(FrameHeader.Size + 50)]));
            raw.Shutdown(SocketShutdown.Both);
            raw.Dispose();

            Assert.Equal("first", Rx.NextMessage(server).GetText());
            Assert.Equal("second", Rx.NextMessage(server).GetText());
            IpcException fault = Rx.NextFault(server);
            Assert.Equal(IpcErrorKind.PeerDisconnected, fault.Kind);
            Assert.Contains("55 bytes", fault.Message);
            Rx.AssertEnded(server);
        }

        [Fact]
        public void PeerThatClosesAtAFrameBoundaryWithoutGoodbyeEndsCleanly()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = HandshakenRawClient(cleanup, name);

            Wire.SendAll(raw, Wire.Frame(FrameType.Text, Wire.Text("only")));
            raw.Shutdown(SocketShutdown.Both);
            raw.Dispose();

            Assert.Equal("only", Rx.NextMessage(server).GetText());
            Rx.AssertEnded(server);
        }

        [Fact]
        public void ErrorFrameFromThePeerBecomesAFaultOfItsKind()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = HandshakenRawClient(cleanup, name);

            byte[] payload = Wire.Concat(new byte[] { 3 }, Wire.Text("too big for me"));
            Wire.SendAll(raw, Wire.Frame(FrameType.Error, payload));

            IpcException fault = Rx.NextFault(server);
            Assert.Equal(IpcErrorKind.MessageTooLarge, fault.Kind);
            Assert.Contains("too big for me", fault.Message);
        }

        [Fact]
        public async Task SendTimesOutWhileThePeerDoesNotReadAndResumesOnceItReads()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name, options: new ChannelOptions { SendBufferBytes = 64 * 1024 });
            Socket raw = HandshakenRawClient(cleanup, name); // then does not read for a while
            var payload = new byte[16 * 1024];
            server.Send(MessageFormat.Bytes, payload, Wire.PatientDeadline(), CancellationToken.None); // the client is there

            IpcException? timeout = null;
            int sent = 1;
            // Bounded: the socket buffers hold at most a few MiB, far below 10,000 x 16 KiB.
            for (; sent < 10_000 && timeout == null; sent++)
            {
                try
                {
                    server.Send(MessageFormat.Bytes, payload, Deadline.After(TimeSpan.FromMilliseconds(50)), CancellationToken.None);
                }
                catch (IpcException e)
                {
                    timeout = e;
                    sent--;
                }
            }
            Assert.NotNull(timeout);
            Assert.Equal(IpcErrorKind.SendTimeout, timeout.Kind);

            // Back-pressure, not a broken connection: once the peer reads, the same send goes through.
            int frameBytes = FrameHeader.Size + payload.Length;
            Task<byte[]> reading = Background.Run(() => Wire.ReadExactly(raw, (sent + 1) * frameBytes));
            server.Send(MessageFormat.Bytes, payload, Wire.PatientDeadline(), CancellationToken.None);
            server.Flush(Wire.PatientDeadline(), CancellationToken.None);
            byte[] all = await Background.Finishes(reading);
            Assert.Equal((uint)payload.Length, FrameHeader.ReadLength(all, sent * frameBytes));
        }

        [Fact]
        public async Task FlushReturnsOnceEverythingIsWrittenToTheSocket()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            string path = Wire.SocketPath(name);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            cleanup.Add(new DeleteFile(path));
            listener.Listen(1);
            Task<Socket> accepting = Background.Run(() =>
            {
                Socket s = listener.Accept();
                s.ReceiveTimeout = (int)Wire.Patience.TotalMilliseconds;
                Assert.Equal(FrameType.Hello, Wire.ReadFrame(s).Type);
                Wire.SendAll(s, Wire.HelloFrame());
                return s;
            });
            PipeClientChannel client = Client(cleanup, name);
            Socket rawServer = cleanup.Add(await Background.Finishes(accepting));

            const int count = 10, size = 1000;
            for (int i = 0; i < count; i++) client.Send(MessageFormat.Bytes, new byte[size], Wire.PatientDeadline(), CancellationToken.None);
            client.Flush(Wire.PatientDeadline(), CancellationToken.None);

            // A Unix socket write lands in the reader's queue at once: after Flush every byte is there.
            Assert.Equal(count * (FrameHeader.Size + size), rawServer.Available);
        }

        [Fact]
        public async Task FlushTimesOutWhileThePeerDoesNotReadAndSucceedsOnceItDoes()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = HandshakenRawClient(cleanup, name);
            var payload = new byte[1024 * 1024];
            server.Send(MessageFormat.Bytes, payload, Wire.PatientDeadline(), CancellationToken.None);
            server.Send(MessageFormat.Bytes, payload, Wire.PatientDeadline(), CancellationToken.None);

            // 2 MiB cannot fit the socket buffers of a peer that does not read.
            var e = Assert.Throws<IpcException>(() => server.Flush(Deadline.After(TimeSpan.FromMilliseconds(100)), CancellationToken.None));
            Assert.Equal(IpcErrorKind.FlushTimeout, e.Kind);

            Task<byte[]> reading = Background.Run(() => Wire.ReadExactly(raw, 2 * (FrameHeader.Size + payload.Length)));
            server.Flush(Wire.PatientDeadline(), CancellationToken.None);
            byte[] received = await Background.Finishes(reading);
            Assert.Equal((uint)payload.Length, FrameHeader.ReadLength(received, FrameHeader.Size + payload.Length));
        }

        [Fact]
        public void SocketFileIsOwnerOnlyAndGoneAfterTheServerCloses()
        {
            string name = Wire.UniqueName();
            string path = Wire.SocketPath(name);
            var server = new PipeServerChannel(name, 1, null);
            try
            {
                Assert.True(File.Exists(path));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            }
            finally
            {
                server.Close(Wire.PatientDeadline());
            }

            Assert.False(File.Exists(path));
        }

        [Fact]
        public void NameIsFreeAgainAfterTheServerCloses()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            new PipeServerChannel(name, 1, null).Close(Wire.PatientDeadline());

            PipeServerChannel again = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);

            SendText(client, "again");
            Assert.Equal("again", Rx.NextMessage(again).GetText());
        }

        [Fact]
        public void InvalidPipeNameIsReportedByServerAndClient()
        {
            var server = Assert.Throws<IpcException>(() => new PipeServerChannel("bad/name", 1, null));
            var client = Assert.Throws<IpcException>(() => PipeClientChannel.Connect("bad/name", Deadline.After(TimeSpan.Zero), CancellationToken.None));

            Assert.Equal(IpcErrorKind.InvalidPipeName, server.Kind);
            Assert.Equal(IpcErrorKind.InvalidPipeName, client.Kind);
        }

        [Fact]
        public void ServerWithoutANameGetsAUniqueOne()
        {
            using var cleanup = new Cleanup();
            PipeServerChannel server = Server(cleanup, null);

            Assert.StartsWith("psipc-", server.Name);
            PipeClientChannel client = Client(cleanup, server.Name);
            SendText(client, "x");
            Assert.Equal("x", Rx.NextMessage(server).GetText());
        }

        [Fact]
        public void MaxClientsBelowOneIsRejected()
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => new PipeServerChannel(Wire.UniqueName(), 0, null));
        }

        /// <summary>What a crashed server leaves: a socket file nobody listens on.</summary>
        private static void LeaveStaleSocketFile(string path)
        {
            // Bound through PsIpc's own endpoint class: .NET unlinks the file of a socket bound with
            // UnixDomainSocketEndPoint when it is disposed, which a crash would not do.
            using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                stale.Bind(new PsIpc.Transport.Platform.UnixEndPoint(path));
                stale.Listen(1);
            }
            Assert.True(File.Exists(path), "the stale socket file should remain after its socket was disposed");
        }

        // The peer uid check (SO_PEERCRED) needs a process of another user; it is not faked here.

        private sealed class DeleteFile : IDisposable
        {
            private readonly string _path;
            public DeleteFile(string path) => _path = path;
            public void Dispose() => File.Delete(_path);
        }
    }
}
