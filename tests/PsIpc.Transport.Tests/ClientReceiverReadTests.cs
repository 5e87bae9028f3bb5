using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// A client's receiver reading the answer to what it sent itself (ConnectionClientChannel.ReceiveCore, through
    /// MessageConnection.ReadForReceiver): answers still come in order, a client that only listens leaves reading to its
    /// reader thread, and the end of the peer, Ctrl+C and deadlines still end the wait.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class ClientReceiverReadTests
    {
        private static readonly Deadline Never = Deadline.Infinite;

        private static void Send(IpcChannel channel, string text) =>
            channel.Send(MessageFormat.Text, Wire.Text(text), Wire.PatientDeadline(), CancellationToken.None);

        // Sends every message back to its sender with "!" until the server closes or every client left; how many it echoed.
        private static Task<int> Echo(IpcChannel server) => Background.Run(() =>
        {
            var batch = new List<IpcMessage>();
            int echoed = 0;
            try
            {
                while (true)
                {
                    batch.Clear();
                    if (server.Receive(batch, 16, Wire.PatientDeadline(), CancellationToken.None) <= 0) return echoed;
                    foreach (IpcMessage m in batch)
                    {
                        if (m.Fault != null) continue;
                        Send(m.Sender, m.GetText() + "!");
                        echoed++;
                    }
                }
            }
            catch (IpcException) when (server.IsClosed)
            {
                return echoed;
            }
        });

        [Fact]
        public async Task ASendReceiveLoopIsReadByTheClientsReceiverAndEveryAnswerMatches()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = TestPipes.Server(cleanup, name);
            PipeClientChannel client = TestPipes.Client(cleanup, name);
            Task<int> echo = Echo(server);
            for (int i = 0; i < 300; i++)
            {
                Send(client, $"m{i}");
                Assert.Equal($"m{i}!", Rx.NextMessage(client).GetText());
            }
            Assert.True(client.ReadsByReceivers > 0, "the client's receiver never read an answer itself");
            server.Close(Wire.PatientDeadline());
            Assert.Equal(300, await Background.Finishes(echo));
        }

        [Fact]
        public async Task AClientThatOnlyListensLeavesReadingToItsReaderThread()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = TestPipes.Server(cleanup, name);
            PipeClientChannel client = TestPipes.Client(cleanup, name);
            SpinWait.SpinUntil(() => server.PeerCount == 1, Wire.Patience);
            Task<int> pushing = Background.Run(() =>
            {
                for (int i = 0; i < 500; i++) Send(server, $"p{i}");
                return 500;
            });
            for (int i = 0; i < 500; i++) Assert.Equal($"p{i}", Rx.NextMessage(client).GetText());
            await Background.Finishes(pushing);
            Assert.Equal(0, client.ReadsByReceivers);
        }

        [Fact]
        public async Task CancellationAndTheDeadlineEndAClientReceiverThatReadsItself()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = TestPipes.Server(cleanup, name);
            PipeClientChannel client = TestPipes.Client(cleanup, name);
            Send(client, "one");
            IpcMessage first = Rx.NextMessage(server);
            var none = new List<IpcMessage>();
            // Nothing answers yet: a deadline, a poll and Ctrl+C each end the wait, and nothing is lost.
            Assert.Equal(0, client.Receive(none, 1, Deadline.After(TimeSpan.FromMilliseconds(50)), CancellationToken.None));
            Send(client, "two");
            Assert.Equal("two", Rx.NextMessage(server).GetText());
            Assert.Equal(0, client.Receive(none, 1, Deadline.After(TimeSpan.Zero), CancellationToken.None));
            Send(client, "three");
            Assert.Equal("three", Rx.NextMessage(server).GetText());
            using var cts = new CancellationTokenSource();
            Task<int> waiting = Background.Run(() => client.Receive(none, 1, Never, cts.Token));
            await Background.AssertStillBlocked(waiting);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Background.Finishes(waiting));
            Assert.Empty(none);
            // The connection still works, whoever reads it now.
            Send(first.Sender, "answer");
            Assert.Equal("answer", Rx.NextMessage(client).GetText());
        }

        [Fact]
        public async Task AServerThatClosesWhileTheClientReadsItselfEndsTheReceive()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = TestPipes.Server(cleanup, name);
            PipeClientChannel client = TestPipes.Client(cleanup, name);
            Send(client, "hello");
            Assert.Equal("hello", Rx.NextMessage(server).GetText());
            var into = new List<IpcMessage>();
            Task<int> waiting = Background.Run(() => client.Receive(into, 1, Wire.PatientDeadline(), CancellationToken.None));
            await Background.AssertStillBlocked(waiting);
            server.Close(Wire.PatientDeadline());
            int n = await Background.Finishes(waiting);
            // The end of the stream (-1), or the fault that says why, never a timeout.
            Assert.True(n == -1 || (n == 1 && into[0].Fault != null), $"Receive returned {n}");
        }
    }
}
