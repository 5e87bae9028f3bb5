using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>The UDP datagram format (docs/protocol.md, section 11), at its boundaries.</summary>
    public class UdpDatagramTests
    {
        private static byte[] Bytes(int n, byte fill = 0x41)
        {
            var b = new byte[n];
            for (int i = 0; i < n; i++) b[i] = fill;
            return b;
        }

        private static OutgoingFrame Frame(MessageFormat format, byte[] payload) => new OutgoingFrame((FrameType)format, payload);

        private static IpcException? Decode(byte[] datagram, SocketFraming framing, int max, out MessageFormat format, out byte[]? payload) =>
            UdpDatagrams.TryDecode(datagram, datagram.Length, framing, max, "test", "peer", out format, out payload, out IpcException? invalid) ? null : invalid;

        [Theory]
        [InlineData(SocketFraming.Raw, AddressFamily.InterNetwork, 65507)]
        [InlineData(SocketFraming.LengthPrefixed, AddressFamily.InterNetwork, 65502)]
        [InlineData(SocketFraming.Line, AddressFamily.InterNetwork, 65506)]
        [InlineData(SocketFraming.Raw, AddressFamily.InterNetworkV6, 65527)]
        [InlineData(SocketFraming.LengthPrefixed, AddressFamily.InterNetworkV6, 65522)]
        public void TheLargestMessageFitsOneDatagramAndOneByteMoreIsMessageTooLarge(SocketFraming framing, AddressFamily family, int largest)
        {
            byte[] datagram = UdpDatagrams.Encode(Frame(MessageFormat.Bytes, Bytes(largest)), framing, family, "test");
            Assert.Equal(UdpDatagrams.MaxPayload(family), datagram.Length);

            var e = Assert.Throws<IpcException>(() => UdpDatagrams.Encode(Frame(MessageFormat.Bytes, Bytes(largest + 1)), framing, family, "test"));
            Assert.Equal(IpcErrorKind.MessageTooLarge, e.Kind);
        }

        [Fact]
        public void ALineThatEndsWithANewLineFitsWithoutTheExtraByte()
        {
            byte[] text = Bytes(65507);
            text[text.Length - 1] = (byte)'\n';
            Assert.Same(text, UdpDatagrams.Encode(Frame(MessageFormat.Text, text), SocketFraming.Line, AddressFamily.InterNetwork, "test"));
            Assert.Equal(new byte[] { (byte)'h', (byte)'i', (byte)'\n' },
                UdpDatagrams.Encode(Frame(MessageFormat.Text, Wire.Text("hi")), SocketFraming.Line, AddressFamily.InterNetwork, "test"));
        }

        [Fact]
        public void LengthPrefixedIsOneWholeFrame()
        {
            byte[] datagram = UdpDatagrams.Encode(Frame(MessageFormat.Json, Wire.Text("{}")), SocketFraming.LengthPrefixed, AddressFamily.InterNetwork, "test");
            Assert.Equal(Wire.Frame(FrameType.Json, Wire.Text("{}")), datagram);

            Assert.Null(Decode(datagram, SocketFraming.LengthPrefixed, 100, out MessageFormat format, out byte[]? payload));
            Assert.Equal(MessageFormat.Json, format);
            Assert.Equal("{}", System.Text.Encoding.UTF8.GetString(payload!));
        }

        [Fact]
        public void AnEmptyFrameAndAnEmptyRawDatagramAreEmptyMessages()
        {
            Assert.Null(Decode(Wire.Frame(FrameType.Text, Array.Empty<byte>()), SocketFraming.LengthPrefixed, 0, out MessageFormat format, out byte[]? payload));
            Assert.Equal(MessageFormat.Text, format);
            Assert.Empty(payload!);
            Assert.Null(Decode(Array.Empty<byte>(), SocketFraming.Raw, 0, out format, out payload));
            Assert.Equal(MessageFormat.Bytes, format);
            Assert.Empty(payload!);
        }

        public static IEnumerable<object[]> Garbage()
        {
            yield return new object[] { Array.Empty<byte>() };
            yield return new object[] { new byte[] { 1, 0, 0, 0 } };                                            // shorter than a header
            yield return new object[] { Wire.Concat(Wire.Header(3, 0x10), Wire.Text("ab")) };                 // announces more than it carries
            yield return new object[] { Wire.Concat(Wire.Header(1, 0x10), Wire.Text("ab")) };                 // carries more than it announces
            yield return new object[] { Wire.Concat(Wire.Frame(FrameType.Text, Wire.Text("a")), Wire.Frame(FrameType.Text, Wire.Text("b"))) }; // two frames
            yield return new object[] { Wire.HelloFrame() };                                                   // no handshake over UDP
            yield return new object[] { Wire.Frame(FrameType.Goodbye, Array.Empty<byte>()) };
            yield return new object[] { Wire.Concat(Wire.Header(2, 0x7f), Wire.Text("ab")) };                 // unknown type
            yield return new object[] { Wire.Text("Hello, IPC!") };                                            // a plain datagram
        }

        [Theory]
        [MemberData(nameof(Garbage))]
        public void LengthPrefixedRejectsAnythingButExactlyOneDataFrameAsProtocolError(byte[] datagram)
        {
            IpcException? e = Decode(datagram, SocketFraming.LengthPrefixed, 1000, out _, out byte[]? payload);
            Assert.NotNull(e);
            Assert.Equal(IpcErrorKind.ProtocolError, e.Kind);
            Assert.Null(payload);
        }

        [Theory]
        [InlineData(SocketFraming.Raw)]
        [InlineData(SocketFraming.LengthPrefixed)]
        [InlineData(SocketFraming.Line)]
        public void AMessageAtMaxMessageSizeIsAcceptedAndOneByteMoreIsDropped(SocketFraming framing)
        {
            const int max = 10;
            byte[] Datagram(int n) => framing == SocketFraming.LengthPrefixed ? Wire.Frame(FrameType.Bytes, Bytes(n)) : Bytes(n);

            Assert.Null(Decode(Datagram(max), framing, max, out _, out byte[]? payload));
            Assert.Equal(max, payload!.Length);

            IpcException? e = Decode(Datagram(max + 1), framing, max, out _, out payload);
            Assert.Equal(IpcErrorKind.MessageTooLarge, e?.Kind);
            Assert.Null(payload);
        }

        [Theory]
        [InlineData("hi\n", "hi")]
        [InlineData("hi\r\n", "hi")]
        [InlineData("hi", "hi")]
        [InlineData("a\nb\n", "a\nb")]
        [InlineData("hi\n\n", "hi\n")]
        [InlineData("\n", "")]
        public void LineRemovesOneTrailingNewLine(string datagram, string message)
        {
            Assert.Null(Decode(Wire.Text(datagram), SocketFraming.Line, 100, out MessageFormat format, out byte[]? payload));
            Assert.Equal(MessageFormat.Text, format);
            Assert.Equal(message, System.Text.Encoding.UTF8.GetString(payload!));
        }
    }

    /// <summary>UDP server and client channels over real loopback sockets.</summary>
    public class UdpChannelTests
    {
        private static UdpServerChannel Server(Cleanup cleanup, SocketFraming framing = SocketFraming.LengthPrefixed, int maxPeers = 1000,
            ChannelOptions? options = null) =>
            cleanup.Add(UdpServerChannel.Listen(null, IPAddress.Loopback, 0, framing, maxPeers, options ?? new ChannelOptions()));

        private static UdpClientChannel Client(Cleanup cleanup, int port, SocketFraming framing = SocketFraming.LengthPrefixed) =>
            cleanup.Add(UdpClientChannel.Connect("127.0.0.1", port, framing, Wire.PatientDeadline(), CancellationToken.None));

        private static Socket RawUdp(Cleanup cleanup)
        {
            var socket = cleanup.Add(new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            socket.ReceiveTimeout = (int)Wire.Patience.TotalMilliseconds;
            return socket;
        }

        private static void Send(IpcChannel channel, string text) =>
            channel.Send(MessageFormat.Text, Wire.Text(text), Wire.PatientDeadline(), CancellationToken.None);

        private static string Text(IpcMessage m) => m.GetText();

        private static bool WaitFor(Func<bool> condition)
        {
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < Wire.Patience)
            {
                if (condition()) return true;
                Thread.Sleep(10);
            }
            return condition();
        }

        [Fact]
        public void AClientAndAServerExchangeTypedMessagesAndTheReplyGoesToTheSender()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = Server(cleanup);
            Assert.True(server.Port > 0);
            Assert.Equal($"127.0.0.1:{server.Port}", server.Address);
            Assert.Equal(ChannelState.Listening, server.State);
            UdpClientChannel client = Client(cleanup, server.Port);

            client.Send(MessageFormat.Json, Wire.Text("{\"n\":1}"), Wire.PatientDeadline(), CancellationToken.None);
            IpcMessage request = Rx.NextMessage(server);
            Assert.Equal(MessageFormat.Json, request.Format);
            Assert.Equal("{\"n\":1}", Text(request));
            var peer = Assert.IsType<UdpPeer>(request.Sender);
            Assert.Equal(client.LocalAddress, peer.RemoteAddress);
            Assert.False(peer.IsAuthenticated);
            Assert.Equal(ChannelState.Connected, server.State);
            Assert.Equal(1, server.ClientCount);

            Send(peer, "reply");
            IpcMessage reply = Rx.NextMessage(client);
            Assert.Equal(MessageFormat.Text, reply.Format);
            Assert.Equal("reply", Text(reply));
            Assert.Same(client, reply.Sender);
            Assert.Equal(1, server.MessagesReceived);
            Assert.Equal(1, server.MessagesSent);
            Assert.Equal(1, client.MessagesReceived);
        }

        [Fact]
        public void OneSenderIsOnePeerAndSendingToTheServerReachesEveryPeer()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = Server(cleanup);
            UdpClientChannel a = Client(cleanup, server.Port);
            UdpClientChannel b = Client(cleanup, server.Port);
            Send(a, "a1");
            Send(a, "a2");
            Send(b, "b1");
            var senders = new Dictionary<string, IpcChannel>();
            for (int i = 0; i < 3; i++)
            {
                IpcMessage m = Rx.NextMessage(server);
                string who = Text(m).Substring(0, 1);
                if (senders.TryGetValue(who, out IpcChannel? known)) Assert.Same(known, m.Sender);
                else senders[who] = m.Sender;
            }
            Assert.NotSame(senders["a"], senders["b"]);
            Assert.Equal(2, server.ClientCount);
            Assert.Equal(2, server.ConnectionsAccepted);

            Send(server, "everyone");
            Assert.Equal("everyone", Text(Rx.NextMessage(a)));
            Assert.Equal("everyone", Text(Rx.NextMessage(b)));
        }

        [Fact]
        public void BeyondMaxConnectionsTheLeastRecentlyHeardPeerIsForgotten()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = Server(cleanup, SocketFraming.Raw, maxPeers: 2);
            Socket first = RawUdp(cleanup), second = RawUdp(cleanup), third = RawUdp(cleanup);
            var to = new IPEndPoint(IPAddress.Loopback, server.Port);
            first.SendTo(Wire.Text("1"), to);
            Rx.NextMessage(server);
            second.SendTo(Wire.Text("2"), to);
            Rx.NextMessage(server);
            third.SendTo(Wire.Text("3"), to);
            Rx.NextMessage(server);

            Assert.Equal(2, server.ClientCount);
            Assert.Equal(3, server.ConnectionsAccepted);
            Send(server, "who is there");
            var buffer = new byte[100];
            Assert.Equal(12, second.Receive(buffer));
            Assert.Equal(12, third.Receive(buffer));
            first.ReceiveTimeout = 300; // forgotten: nothing must come (a short look; a bug would show most of the time)
            var e = Assert.Throws<SocketException>(() => first.Receive(buffer));
            Assert.Equal(SocketError.TimedOut, e.SocketErrorCode);
        }

        [Fact]
        public void GarbageIsCountedAndReportedAndTheServerGoesOn()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = Server(cleanup);
            Socket raw = RawUdp(cleanup);
            var to = new IPEndPoint(IPAddress.Loopback, server.Port);
            raw.SendTo(Wire.Text("not a frame"), to);
            raw.SendTo(Wire.Frame(FrameType.Text, Wire.Text("fine")), to);

            Assert.Equal(IpcErrorKind.ProtocolError, Rx.NextFault(server).Kind);
            Assert.Equal("fine", Text(Rx.NextMessage(server)));
            Assert.Equal(1, server.DroppedMalformed);
            Assert.Equal(1, server.DatagramsDropped);
            Assert.Equal(IpcErrorKind.ProtocolError, server.LastDropError?.Kind);
            Assert.Equal(1, server.ClientCount); // the sender, remembered for its valid message
            Assert.Equal(ChannelState.Connected, server.State);
        }

        [Fact]
        public void ADatagramLargerThanMaxMessageSizeIsDroppedAndCounted()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = Server(cleanup, SocketFraming.Raw, options: new ChannelOptions { MaxMessageSize = 100 });
            Socket raw = RawUdp(cleanup);
            var to = new IPEndPoint(IPAddress.Loopback, server.Port);
            raw.SendTo(new byte[101], to);
            raw.SendTo(new byte[100], to);

            Assert.Equal(IpcErrorKind.MessageTooLarge, Rx.NextFault(server).Kind);
            Assert.Equal(100, Rx.NextMessage(server).Size);
            Assert.Equal(1, server.DroppedTooLarge);
            Assert.Equal(0, server.DroppedMalformed);
        }

        [Fact]
        public void AFullReceiveQueueDropsDatagramsAndCountsThem()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = Server(cleanup, SocketFraming.Raw, options: new ChannelOptions { ReceiveBufferMessages = 2 });
            Socket raw = RawUdp(cleanup);
            var to = new IPEndPoint(IPAddress.Loopback, server.Port);
            for (int i = 0; i < 5; i++) raw.SendTo(new[] { (byte)i }, to);

            Assert.True(WaitFor(() => server.DroppedQueueFull == 3), $"DroppedQueueFull is {server.DroppedQueueFull}");
            var into = new List<IpcMessage>();
            Assert.Equal(2, server.Receive(into, 10, Wire.PatientDeadline(), CancellationToken.None));
            Assert.Equal(new byte[] { 0 }, into[0].Payload);
            Assert.Equal(new byte[] { 1 }, into[1].Payload);
            Assert.Equal(3, server.DatagramsDropped);
            Assert.Equal(2, server.MessagesReceived);

            raw.SendTo(new byte[] { 9 }, to); // room again
            Assert.Equal(new byte[] { 9 }, Rx.NextMessage(server).Payload);
        }

        [Fact]
        public void SendingMoreThanADatagramHoldsFailsBeforeSendingAndTheChannelStaysUsable()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = Server(cleanup);
            UdpClientChannel client = Client(cleanup, server.Port);
            Assert.Equal(65502, client.MaxDatagramMessage);

            var e = Assert.Throws<IpcException>(() =>
                client.Send(MessageFormat.Bytes, new byte[65503], Wire.PatientDeadline(), CancellationToken.None));
            Assert.Equal(IpcErrorKind.MessageTooLarge, e.Kind);
            Assert.Equal(0, client.MessagesSent);

            client.Send(MessageFormat.Bytes, new byte[65502], Wire.PatientDeadline(), CancellationToken.None);
            Assert.Equal(65502, Rx.NextMessage(server).Size);
        }

        [Fact]
        public void NobodyListeningShowsUpAsConnectionRefusedAndTheClientStaysUsable()
        {
            using var cleanup = new Cleanup();
            int port;
            using (Socket probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            }
            UdpClientChannel client = Client(cleanup, port);
            Send(client, "anyone?");
            IpcException refused = Rx.NextFault(client);
            Assert.Equal(IpcErrorKind.ConnectionRefused, refused.Kind);
            Assert.Equal(1, client.Refusals);
            Assert.Equal(ChannelState.Connected, client.State);

            // A server that starts later on that port is reached by the same channel.
            UdpServerChannel server = cleanup.Add(UdpServerChannel.Listen(null, IPAddress.Loopback, port, SocketFraming.LengthPrefixed, 10, null));
            Send(client, "now?");
            Assert.Equal("now?", Text(Rx.NextMessage(server)));
        }

        [Fact]
        public void ReceiveAndABroadcastWithoutPeersEndAtTheirDeadlineOrAtCancellation()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = Server(cleanup);
            var into = new List<IpcMessage>();
            Assert.Equal(0, server.Receive(into, 1, Deadline.After(TimeSpan.FromMilliseconds(50)), CancellationToken.None));

            var e = Assert.Throws<IpcException>(() =>
                server.Send(MessageFormat.Text, Wire.Text("x"), Deadline.After(TimeSpan.FromMilliseconds(50)), CancellationToken.None));
            Assert.Equal(IpcErrorKind.SendTimeout, e.Kind);

            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
            Assert.ThrowsAny<OperationCanceledException>(() => server.Receive(into, 1, Deadline.Infinite, cts.Token));
            using var cts2 = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
            Assert.ThrowsAny<OperationCanceledException>(() =>
                server.Send(MessageFormat.Text, Wire.Text("x"), Deadline.Infinite, cts2.Token));
        }

        [Fact]
        public async Task ClosingReleasesThePortAndEndsAWaitingReceive()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = UdpServerChannel.Listen(null, IPAddress.Loopback, 0, SocketFraming.Raw, 10, null);
            int port = server.Port;
            Task<int> waiting = Background.Run(() =>
            {
                try { return server.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, CancellationToken.None); }
                catch (IpcException e) when (e.Kind == IpcErrorKind.ChannelClosed) { return -2; }
            });
            await Background.AssertStillBlocked(waiting);
            server.Close(Wire.PatientDeadline());
            int result = await Background.Finishes(waiting);
            Assert.True(result == -1 || result == -2, $"Receive returned {result}");
            Assert.Equal(ChannelState.Closed, server.State);

            UdpServerChannel again = cleanup.Add(UdpServerChannel.Listen(null, IPAddress.Loopback, port, SocketFraming.Raw, 10, null));
            Assert.Equal(port, again.Port);
        }

        [Fact]
        public void APortInUseIsAddressInUse()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel first = Server(cleanup);
            var e = Assert.Throws<IpcException>(() => UdpServerChannel.Listen(null, IPAddress.Loopback, first.Port, SocketFraming.Raw, 10, null));
            Assert.Equal(IpcErrorKind.AddressInUse, e.Kind);
        }

        [Theory]
        [InlineData("0.0.0.0")]
        [InlineData("::")]
        [InlineData("192.0.2.1")]
        public void ANonLoopbackAddressFailsClosedWithAuthenticationRequired(string address)
        {
            var e = Assert.Throws<IpcException>(() => UdpServerChannel.Listen(null, IPAddress.Parse(address), 0, SocketFraming.Raw, 10, null));
            Assert.Equal(IpcErrorKind.AuthenticationRequired, e.Kind);
        }

        [Fact]
        public void ServesIPv6Loopback()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = cleanup.Add(UdpServerChannel.Listen(null, IPAddress.IPv6Loopback, 0, SocketFraming.Line, 10, null));
            Assert.Equal($"[::1]:{server.Port}", server.Address);
            Assert.Equal(65526, server.MaxDatagramMessage); // IPv6's 65527, less the newline Line adds
            UdpClientChannel client = cleanup.Add(UdpClientChannel.Connect("::1", server.Port, SocketFraming.Line, Wire.PatientDeadline(), CancellationToken.None));
            Send(client, "over v6");
            IpcMessage m = Rx.NextMessage(server);
            Assert.Equal("over v6", Text(m));
            Send(m.Sender, "back");
            Assert.Equal("back", Text(Rx.NextMessage(client)));
        }

        [Fact]
        public void ClosingAPeerForgetsItAndItIsRememberedAgainWhenItSends()
        {
            using var cleanup = new Cleanup();
            UdpServerChannel server = Server(cleanup);
            UdpClientChannel client = Client(cleanup, server.Port);
            Send(client, "1");
            IpcChannel peer = Rx.NextMessage(server).Sender;
            peer.Close(Wire.PatientDeadline());
            Assert.Equal(0, server.ClientCount);
            Assert.Equal(ChannelState.Closed, peer.State);

            Send(client, "2");
            IpcChannel again = Rx.NextMessage(server).Sender;
            Assert.NotSame(peer, again);
            Assert.Equal(1, server.ClientCount);
        }
    }
}
