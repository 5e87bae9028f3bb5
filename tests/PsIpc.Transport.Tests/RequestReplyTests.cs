using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>IpcChannel.Request/Reply over real pipes: correlation ids, concurrency, late replies, peers without ids.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class RequestReplyTests
    {
        private static readonly Deadline Never = Deadline.Infinite;

        private static (PipeServerChannel Server, PipeClientChannel Client) Pair(Cleanup cleanup, SocketFraming framing = SocketFraming.LengthPrefixed)
        {
            string name = Wire.UniqueName();
            PipeServerChannel server = cleanup.Add(new PipeServerChannel(name, int.MaxValue, null, framing));
            PipeClientChannel client = cleanup.Add(PipeClientChannel.Connect(name, framing, Wire.PatientDeadline(), CancellationToken.None, null));
            return (server, client);
        }

        private static string Text(IpcMessage m) => m.GetText();

        private static void ReplyText(IpcMessage request, string text) =>
            request.Sender.Reply(request, MessageFormat.Text, Wire.Text(text), Wire.PatientDeadline(), CancellationToken.None);

        // Answers every request with its text and "!" until the server closes; replies in reverse order of each batch.
        private static Task Echo(IpcChannel server) => Background.Run(() =>
        {
            var batch = new List<IpcMessage>();
            try
            {
                while (true)
                {
                    batch.Clear();
                    if (server.Receive(batch, 64, Never, CancellationToken.None) < 0) return;
                    for (int i = batch.Count - 1; i >= 0; i--)
                    {
                        if (batch[i].Fault == null) ReplyText(batch[i], Text(batch[i]) + "!");
                    }
                }
            }
            catch (IpcException) { } // closed
        });

        [Fact]
        public async Task RequestReturnsTheReplyWithTheRequestsCorrelationId()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            Task<IpcMessage> asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("ping"), Wire.PatientDeadline(), CancellationToken.None));
            IpcMessage request = Rx.NextMessage(server);
            Assert.NotEqual(0u, request.CorrelationId);
            Assert.True(request.Sender.SupportsCorrelation);
            ReplyText(request, "pong");
            IpcMessage reply = await Background.Finishes(asking);
            Assert.Equal("pong", Text(reply));
            Assert.Same(client, reply.Sender);
            Assert.True(client.SupportsCorrelation);
            Assert.Equal(0, client.LateRepliesDropped);
        }

        [Fact]
        public async Task ConcurrentRequestsFromSeveralThreadsEachGetTheirOwnReply()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            Task echo = Echo(server);
            var threads = Enumerable.Range(0, 8).Select(t => Background.Run(() =>
            {
                var wrong = new List<string>();
                for (int i = 0; i < 100; i++)
                {
                    string text = $"{t}-{i}";
                    IpcMessage reply = client.Request(MessageFormat.Text, Wire.Text(text), Wire.PatientDeadline(), CancellationToken.None);
                    if (Text(reply) != text + "!") wrong.Add($"{text} got {Text(reply)}");
                }
                return wrong;
            })).ToArray();
            foreach (Task<List<string>> thread in threads) Assert.Empty(await Background.Finishes(thread));
            Assert.Equal(0, client.LateRepliesDropped);
            server.Close(Wire.PatientDeadline());
            await echo;
        }

        [Fact]
        public async Task ALateReplyIsDroppedAndCountedNotHandedToTheNextRequest()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            Assert.False(client.TryRequest(MessageFormat.Text, Wire.Text("first"), Deadline.After(TimeSpan.FromMilliseconds(200)), CancellationToken.None, out IpcMessage? none));
            Assert.Null(none);
            IpcMessage first = Rx.NextMessage(server);
            ReplyText(first, "late answer to first"); // the requester has given up

            Task<IpcMessage> second = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("second"), Wire.PatientDeadline(), CancellationToken.None));
            IpcMessage secondRequest = Rx.NextMessage(server);
            Assert.Equal("second", Text(secondRequest));
            ReplyText(secondRequest, "answer to second");
            Assert.Equal("answer to second", Text(await Background.Finishes(second)));
            // Frames arrive in order: the late reply was read before the second one.
            Assert.Equal(1, client.LateRepliesDropped);
            var nothing = new List<IpcMessage>();
            Assert.Equal(0, client.Receive(nothing, 1, Deadline.After(TimeSpan.Zero), CancellationToken.None));
        }

        [Fact]
        public void TimeoutIsFalseFromTryRequestAndReceiveTimeoutFromRequest()
        {
            using var cleanup = new Cleanup();
            var (_, client) = Pair(cleanup);
            Assert.False(client.TryRequest(MessageFormat.Text, Wire.Text("x"), Deadline.After(TimeSpan.Zero), CancellationToken.None, out _));
            var e = Assert.Throws<IpcException>(() => client.Request(MessageFormat.Text, Wire.Text("y"), Deadline.After(TimeSpan.FromMilliseconds(50)), CancellationToken.None));
            Assert.Equal(IpcErrorKind.ReceiveTimeout, e.Kind);
        }

        [Fact]
        public async Task CancellationEndsAWaitingRequest()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            using var cts = new CancellationTokenSource();
            Task<IpcMessage> asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("x"), Never, cts.Token));
            Rx.NextMessage(server); // it was sent and waits
            await Background.AssertStillBlocked(asking);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Background.Finishes(asking));
        }

        [Fact]
        public async Task AHandlerErrorReachesThatRequestAndLeavesTheConnectionOpen()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            Task<IpcMessage> asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("bad"), Wire.PatientDeadline(), CancellationToken.None));
            IpcMessage request = Rx.NextMessage(server);
            Assert.True(request.Sender.ReplyError(request, IpcErrorKind.HandlerFailed, "boom", Wire.PatientDeadline(), CancellationToken.None));
            var e = await Assert.ThrowsAsync<IpcException>(() => Background.Finishes(asking));
            Assert.Equal(IpcErrorKind.HandlerFailed, e.Kind);
            Assert.Contains("boom", e.Message);

            // An error for a plain message (no request id) reaches Receive as a fault at that point of the stream.
            client.Send(MessageFormat.Text, Wire.Text("plain"), Wire.PatientDeadline(), CancellationToken.None);
            IpcMessage plain = Rx.NextMessage(server);
            Assert.Equal(0u, plain.CorrelationId);
            Assert.True(plain.Sender.ReplyError(plain, IpcErrorKind.HandlerFailed, "plain boom", Wire.PatientDeadline(), CancellationToken.None));
            IpcException fault = Rx.NextFault(client);
            Assert.Equal(IpcErrorKind.HandlerFailed, fault.Kind);
            Assert.Equal(ChannelState.Connected, client.State);
        }

        [Fact]
        public async Task ReceiveOnTheSameChannelGetsOtherMessagesButNeverAReply()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            Task<IpcMessage> asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("q"), Wire.PatientDeadline(), CancellationToken.None));
            IpcMessage request = Rx.NextMessage(server);
            server.Send(MessageFormat.Text, Wire.Text("broadcast"), Wire.PatientDeadline(), CancellationToken.None);
            ReplyText(request, "answer");
            Assert.Equal("answer", Text(await Background.Finishes(asking)));
            Assert.Equal("broadcast", Text(Rx.NextMessage(client)));
            var nothing = new List<IpcMessage>();
            Assert.Equal(0, client.Receive(nothing, 1, Deadline.After(TimeSpan.Zero), CancellationToken.None));
        }

        [Fact]
        public async Task AfterARequestLoopAPlainReceiveStillGetsWhatTheServerSends()
        {
            // The requester reads its replies itself and the reader thread parks meanwhile: a Receive wakes it.
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            Task echo = Echo(server);
            for (int i = 0; i < 50; i++) Assert.Equal($"{i}!", Text(client.Request(MessageFormat.Text, Wire.Text($"{i}"), Wire.PatientDeadline(), CancellationToken.None)));
            IpcChannel peer = server.Peers.Single();
            peer.Send(MessageFormat.Text, Wire.Text("pushed"), Wire.PatientDeadline(), CancellationToken.None);
            Assert.Equal("pushed", Text(Rx.NextMessage(client)));
            server.Close(Wire.PatientDeadline());
            await echo;
        }

        [Fact]
        public async Task ALargeMessageArrivingDuringARequestIsDeliveredWholeAndTheReplyStillComes()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            Task<IpcMessage> asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("q"), Wire.PatientDeadline(), CancellationToken.None));
            IpcMessage request = Rx.NextMessage(server);
            var large = new byte[3 * 1024 * 1024 + 17];
            new Random(7).NextBytes(large);
            server.Send(MessageFormat.Bytes, large, Wire.PatientDeadline(), CancellationToken.None); // a broadcast, not a reply
            ReplyText(request, "answer");
            IpcMessage pushed = Rx.NextMessage(client);
            Assert.Equal(large, pushed.Payload);
            Assert.Equal("answer", Text(await Background.Finishes(asking)));
        }

        [Fact]
        public async Task ASendToThePeerAnswersItsOldestUnansweredRequest()
        {
            // A Receive/Send loop (Send-IpcMessage $envelope.Sender) serves requests without knowing about ids.
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            Task<IpcMessage> asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("q"), Wire.PatientDeadline(), CancellationToken.None));
            IpcMessage request = Rx.NextMessage(server);
            request.Sender.Send(MessageFormat.Text, Wire.Text("sent back"), Wire.PatientDeadline(), CancellationToken.None);
            Assert.Equal("sent back", Text(await Background.Finishes(asking)));
            request.Sender.Send(MessageFormat.Text, Wire.Text("unasked"), Wire.PatientDeadline(), CancellationToken.None);
            Assert.Equal("unasked", Text(Rx.NextMessage(client)));
        }

        [Fact]
        public async Task ALineFramedPeerGetsSendThenNextMessage()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup, SocketFraming.Line);
            Assert.False(client.SupportsCorrelation);
            Task<IpcMessage> asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("hello"), Wire.PatientDeadline(), CancellationToken.None));
            IpcMessage request = Rx.NextMessage(server);
            Assert.Equal("hello", Text(request));
            Assert.Equal(0u, request.CorrelationId);
            Assert.False(request.Sender.ReplyError(request, IpcErrorKind.HandlerFailed, "no way to say it", Wire.PatientDeadline(), CancellationToken.None));
            ReplyText(request, "world");
            Assert.Equal("world", Text(await Background.Finishes(asking)));
        }

        [Fact]
        public async Task AnOlderPeerWithoutTheFlagGetsPlainFramesAndItsNextMessageIsTheReply()
        {
            // A version 1 server that knows no flags: its Hello's flags byte is 0, and it must never see a Request frame.
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            string path = Wire.SocketPath(name);
            var listener = cleanup.Add(new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified));
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            Task<Frame> oldServer = Background.Run(() =>
            {
                using Socket s = listener.Accept();
                s.ReceiveTimeout = (int)Wire.Patience.TotalMilliseconds;
                Frame hello = Wire.ReadFrame(s);
                Assert.True(Hello.TryParse(hello.Payload)!.SupportsCorrelation); // we announce it
                Wire.SendAll(s, Wire.HelloFrame());                              // it does not
                Frame request = Wire.ReadFrame(s);
                Wire.SendAll(s, Wire.Frame(FrameType.Text, Wire.Text("old pong")));
                Wire.ReadsToEof(s);
                return request;
            });
            try
            {
                PipeClientChannel client = cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None, null));
                Assert.False(client.SupportsCorrelation);
                IpcMessage reply = client.Request(MessageFormat.Text, Wire.Text("ping"), Wire.PatientDeadline(), CancellationToken.None);
                Assert.Equal("old pong", Text(reply));
                client.Close(Wire.PatientDeadline());
                Frame sent = await Background.Finishes(oldServer);
                Assert.Equal(FrameType.Text, sent.Type);
                Assert.Equal("ping", System.Text.Encoding.UTF8.GetString(sent.Payload));
            }
            finally
            {
                System.IO.File.Delete(path);
            }
        }

        [Fact]
        public async Task ClosedChannelsFailRequestsAtOnce()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            Task<IpcMessage> asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("q"), Never, CancellationToken.None));
            Rx.NextMessage(server);
            server.Close(Wire.PatientDeadline()); // the peer leaves without answering: the waiting request ends, no timeout
            var e = await Assert.ThrowsAsync<IpcException>(() => Background.Finishes(asking));
            Assert.Equal(IpcErrorKind.PeerDisconnected, e.Kind);

            client.Close(Wire.PatientDeadline());
            var closed = Assert.Throws<IpcException>(() => client.Request(MessageFormat.Text, Wire.Text("q"), Never, CancellationToken.None));
            Assert.Equal(IpcErrorKind.ChannelClosed, closed.Kind);
        }

        [Fact]
        public void APeerViewCannotRequest()
        {
            using var cleanup = new Cleanup();
            var (server, client) = Pair(cleanup);
            client.Send(MessageFormat.Text, Wire.Text("hi"), Wire.PatientDeadline(), CancellationToken.None);
            IpcChannel peer = Rx.NextMessage(server).Sender;
            var e = Assert.Throws<IpcException>(() => peer.Request(MessageFormat.Text, Wire.Text("q"), Wire.PatientDeadline(), CancellationToken.None));
            Assert.Equal(IpcErrorKind.OperationNotSupported, e.Kind);
        }
    }
}
