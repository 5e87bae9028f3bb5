using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// A server's receiver reading its only client's requests itself (MessageConnection.ReadForReceiver): replies still
    /// match, other clients are still heard, and the end of the peer, Ctrl+C and deadlines still end the wait.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class ServerReceiverReadTests
    {
        private static readonly Deadline Never = Deadline.Infinite;

        private static void ReplyText(IpcMessage request, string text) =>
            request.Sender.Reply(request, MessageFormat.Text, Wire.Text(text), Wire.PatientDeadline(), CancellationToken.None);

        // Answers every message with its text and "!" until the stream ends; what came is recorded (plain messages and
        // faults separately). Returns how Receive ended: -1 for the end of the stream.
        private static Task<int> Echo(IpcChannel server, ConcurrentQueue<string> plain, ConcurrentQueue<IpcException> faults) => Background.Run(() =>
        {
            var batch = new List<IpcMessage>();
            try
            {
                while (true)
                {
                    batch.Clear();
                    int n = server.Receive(batch, 16, Wire.PatientDeadline(), CancellationToken.None);
                    if (n <= 0) return n;
                    foreach (IpcMessage m in batch)
                    {
                        if (m.Fault != null)
                        {
                            faults.Enqueue(m.Fault);
                            continue;
                        }
                        if (m.CorrelationId == 0) plain.Enqueue(m.GetText());
                        ReplyText(m, m.GetText() + "!");
                    }
                }
            }
            catch (IpcException) when (server.IsClosed)
            {
                return -2;
            }
        });

        [Fact]
        public async Task ARequestLoopOfTheOnlyClientIsReadByTheReceiverAndEveryReplyMatches()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = TestPipes.Server(cleanup, name, maxClients: 1);
            PipeClientChannel client = TestPipes.Client(cleanup, name);
            var plain = new ConcurrentQueue<string>();
            var faults = new ConcurrentQueue<IpcException>();
            Task<int> echo = Echo(server, plain, faults);
            for (int i = 0; i < 300; i++)
            {
                IpcMessage reply = client.Request(MessageFormat.Text, Wire.Text($"q{i}"), Wire.PatientDeadline(), CancellationToken.None);
                Assert.Equal($"q{i}!", reply.GetText());
            }
            Assert.True(server.ReadsByReceivers > 0, "the receiver never read the client's requests itself");
            Assert.Equal(0, client.LateRepliesDropped);
            client.Close(Wire.PatientDeadline()); // its goodbye, read by whoever reads: the stream of the one-client server ends
            Assert.Equal(-1, await Background.Finishes(echo));
            Assert.Empty(faults);
            Assert.Empty(plain);
        }

        [Fact]
        public async Task APlainSendReceiveLoopSwitchesItOnToo()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = TestPipes.Server(cleanup, name);
            PipeClientChannel client = TestPipes.Client(cleanup, name);
            var plain = new ConcurrentQueue<string>();
            var faults = new ConcurrentQueue<IpcException>();
            Task<int> echo = Echo(server, plain, faults);
            for (int i = 0; i < 200; i++)
            {
                client.Send(MessageFormat.Text, Wire.Text($"m{i}"), Wire.PatientDeadline(), CancellationToken.None);
                Assert.Equal($"m{i}!", Rx.NextMessage(client).GetText());
            }
            Assert.True(server.ReadsByReceivers > 0, "a client that waits for each answer should be read by the receiver");
            Assert.Equal(200, plain.Count);
            Assert.Empty(faults);
            server.Close(Wire.PatientDeadline());
            await Background.Finishes(echo);
        }

        [Fact]
        public async Task ASecondClientIsHeardWhileTheFirstKeepsRequesting()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = TestPipes.Server(cleanup, name);
            PipeClientChannel first = TestPipes.Client(cleanup, name);
            var plain = new ConcurrentQueue<string>();
            var faults = new ConcurrentQueue<IpcException>();
            Task<int> echo = Echo(server, plain, faults);
            using var stop = new CancellationTokenSource();
            Task<List<string>> asking = Background.Run(() =>
            {
                var wrong = new List<string>();
                for (int i = 0; !stop.IsCancellationRequested; i++)
                {
                    IpcMessage reply = first.Request(MessageFormat.Text, Wire.Text($"a{i}"), Wire.PatientDeadline(), CancellationToken.None);
                    if (reply.GetText() != $"a{i}!") wrong.Add($"a{i} got {reply.GetText()}");
                }
                return wrong;
            });
            // Wait until the first client's requests are being read by the receiver, then a second client speaks.
            SpinWait.SpinUntil(() => server.ReadsByReceivers > 10 || asking.IsCompleted, Wire.Patience);
            PipeClientChannel second = TestPipes.Client(cleanup, name);
            second.Send(MessageFormat.Text, Wire.Text("from the second"), Wire.PatientDeadline(), CancellationToken.None);
            Assert.Equal("from the second!", Rx.NextMessage(second).GetText());
            stop.Cancel();
            Assert.Empty(await Background.Finishes(asking));
            Assert.Contains("from the second", plain);
            Assert.Empty(faults);
            server.Close(Wire.PatientDeadline());
            await Background.Finishes(echo);
        }

        [Fact]
        public async Task CancellationAndTheDeadlineEndAReceiverThatReadsItself()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = TestPipes.Server(cleanup, name);
            PipeClientChannel client = TestPipes.Client(cleanup, name);
            Task<IpcMessage> asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("one"), Wire.PatientDeadline(), CancellationToken.None));
            ReplyText(Rx.NextMessage(server), "answer");
            Assert.Equal("answer", (await Background.Finishes(asking)).GetText());

            var none = new List<IpcMessage>();
            Assert.Equal(0, server.Receive(none, 1, Deadline.After(TimeSpan.FromMilliseconds(50)), CancellationToken.None));
            Assert.Equal(0, server.Receive(none, 1, Deadline.After(TimeSpan.Zero), CancellationToken.None));

            using var cts = new CancellationTokenSource();
            Task<int> waiting = Background.Run(() => server.Receive(none, 1, Never, cts.Token));
            await Background.AssertStillBlocked(waiting);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Background.Finishes(waiting));

            // The connection still works, whoever reads it now.
            asking = Background.Run(() => client.Request(MessageFormat.Text, Wire.Text("two"), Wire.PatientDeadline(), CancellationToken.None));
            ReplyText(Rx.NextMessage(server), "again");
            Assert.Equal("again", (await Background.Finishes(asking)).GetText());
        }

        [Fact]
        public async Task APeerThatDiesInsideAMessageIsAFaultAfterItsRequestsWereAnswered()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = TestPipes.Server(cleanup, name, maxClients: 1);
            var plain = new ConcurrentQueue<string>();
            var faults = new ConcurrentQueue<IpcException>();
            Task<int> echo = Echo(server, plain, faults);
            using Socket raw = Wire.RawConnect(name);
            Wire.SendAll(raw, Wire.Frame(FrameType.Hello, new Hello(Hello.CurrentVersion, Environment.ProcessId, FrameHeader.DefaultMaxMessageSize, Hello.CorrelationFlag).ToPayload()));
            Assert.Equal(FrameType.Hello, Wire.ReadFrame(raw).Type);
            for (uint id = 1; id <= 20; id++)
            {
                byte[] body = Wire.Concat(BitConverter.GetBytes(id), new[] { (byte)FrameType.Text }, Wire.Text($"r{id}"));
                Wire.SendAll(raw, Wire.Frame(FrameType.Request, body));
                Frame reply = Wire.ReadFrame(raw);
                Assert.Equal(FrameType.Reply, reply.Type);
                Assert.Equal(id, FrameHeader.ReadLength(reply.Payload, 0));
                Assert.Equal($"r{id}!", System.Text.Encoding.UTF8.GetString(reply.Payload, FrameParser.CorrelationPrefixSize, reply.Payload.Length - FrameParser.CorrelationPrefixSize));
            }
            // Half a request, then gone.
            Wire.SendAll(raw, Wire.Concat(Wire.Header(100, (byte)FrameType.Request), new byte[10]));
            raw.Shutdown(SocketShutdown.Both);
            raw.Close();
            Assert.Equal(-1, await Background.Finishes(echo));
            IpcException fault = Assert.Single(faults);
            Assert.Equal(IpcErrorKind.PeerDisconnected, fault.Kind);
            Assert.Empty(plain);
        }
    }
}
