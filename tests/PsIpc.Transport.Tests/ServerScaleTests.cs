using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// Server connections without threads of their own (issue 12, item 4): with ReaderThreads = 0 every connection reads
    /// and writes on the thread pool. Request/reply, plain messages both ways, back-pressure into a full receive queue,
    /// large replies through the asynchronous drain, the goodbye after them, and the server's first connections on
    /// reader threads beside later ones on the pool. The thread count itself is checked across processes, in
    /// tests/Pester/Scenario.Sockets.Scale.Tests.ps1.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class ServerScaleTests
    {
        private static ChannelOptions PoolOnly(Action<ChannelOptions>? more = null)
        {
            var options = new ChannelOptions { ReaderThreads = 0 };
            more?.Invoke(options);
            return options;
        }

        private static void ReplyText(IpcMessage request, string text) =>
            request.Sender.Reply(request, MessageFormat.Text, Wire.Text(text), Wire.PatientDeadline(), CancellationToken.None);

        // Answers every message with its text and "!" until the server closes.
        private static Task Echo(IpcChannel server) => Background.Run(() =>
        {
            var batch = new List<IpcMessage>();
            try
            {
                while (true)
                {
                    batch.Clear();
                    if (server.Receive(batch, 64, Deadline.Infinite, CancellationToken.None) < 0) return;
                    foreach (IpcMessage m in batch)
                    {
                        if (m.Fault == null) ReplyText(m, m.GetText() + "!");
                    }
                }
            }
            catch (IpcException) { } // closed
        });

        [Theory]
        [InlineData(0)]  // every connection on the thread pool
        [InlineData(4)]  // the first four on reader threads, the rest on the pool
        public async Task ManyClientsGetEveryReplyRightFromAServerWithoutAThreadPerConnection(int readerThreads)
        {
            const int clients = 150, rounds = 5;
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = cleanup.Add(new PipeServerChannel(name, int.MaxValue, PoolOnly(o => o.ReaderThreads = readerThreads)));
            Task echo = Echo(server);
            var all = new List<PipeClientChannel>();
            for (int i = 0; i < clients; i++) all.Add(cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None)));
            Assert.True(SpinWait.SpinUntil(() => server.PeerCount == clients, Wire.Patience), $"{server.PeerCount} of {clients} clients connected");

            // Every client asks at once: requests (the caller reads its reply) and plain messages answered in order.
            Task<List<string>>[] asking = all.Select((client, i) => Background.Run(() =>
            {
                var wrong = new List<string>();
                for (int r = 0; r < rounds; r++)
                {
                    IpcMessage? reply = client.Request(MessageFormat.Text, Wire.Text($"c{i} r{r}"), Wire.PatientDeadline(), CancellationToken.None);
                    if (reply == null || reply.GetText() != $"c{i} r{r}!") wrong.Add($"c{i} r{r} -> {reply?.GetText() ?? "(timeout)"}");
                    client.Send(MessageFormat.Text, Wire.Text($"c{i} m{r}"), Wire.PatientDeadline(), CancellationToken.None);
                    string answer = Rx.NextMessage(client).GetText();
                    if (answer != $"c{i} m{r}!") wrong.Add($"c{i} m{r} -> {answer}");
                }
                return wrong;
            })).ToArray();
            List<string>[] results = await Task.WhenAll(asking);
            Assert.Empty(results.SelectMany(w => w));
            Assert.Equal(0, server.ConnectionErrors);

            foreach (PipeClientChannel client in all) client.Close(Wire.PatientDeadline());
            Assert.True(SpinWait.SpinUntil(() => server.PeerCount == 0, Wire.Patience), $"{server.PeerCount} clients still connected");
            Assert.Equal(0, server.ConnectionErrors);
            server.Close(Wire.PatientDeadline());
            await echo;
        }

        [Fact]
        public void APoolConnectionStopsReadingWhileTheServersQueueIsFullAndLosesNothing()
        {
            const int count = 300;
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = cleanup.Add(new PipeServerChannel(name, 1, PoolOnly(o => o.ReceiveBufferMessages = 4)));
            PipeClientChannel client = cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None));
            for (int i = 0; i < count; i++) client.Send(MessageFormat.Text, Wire.Text($"m{i}"), Wire.PatientDeadline(), CancellationToken.None);
            client.Flush(Wire.PatientDeadline(), CancellationToken.None);
            // The queue holds 4: the connection awaits room (no thread blocked) and reads on as messages are taken.
            for (int i = 0; i < count; i++) Assert.Equal($"m{i}", Rx.NextMessage(server).GetText());
            Assert.Equal(0, server.ConnectionErrors);
        }

        [Fact]
        public void APoolConnectionWritesQueuedAndLargeMessagesInOrderThenItsGoodbye()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = cleanup.Add(new PipeServerChannel(name, 1, PoolOnly()));
            PipeClientChannel client = cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None));
            client.Send(MessageFormat.Text, Wire.Text("hi"), Wire.PatientDeadline(), CancellationToken.None);
            IpcChannel peer = Rx.NextMessage(server).Sender;
            var large = new byte[3 * 1024 * 1024 + 7];
            new Random(12).NextBytes(large);
            // Back to back: all but the first go through the drain, the large one in several asynchronous writes.
            for (int i = 0; i < 200; i++) peer.Send(MessageFormat.Text, Wire.Text($"s{i}"), Wire.PatientDeadline(), CancellationToken.None);
            peer.Send(MessageFormat.Bytes, large, Wire.PatientDeadline(), CancellationToken.None);
            peer.Send(MessageFormat.Text, Wire.Text("last"), Wire.PatientDeadline(), CancellationToken.None);
            server.Close(Wire.PatientDeadline()); // flushes, says goodbye

            for (int i = 0; i < 200; i++) Assert.Equal($"s{i}", Rx.NextMessage(client).GetText());
            Assert.Equal(large, Rx.NextMessage(client).Payload);
            Assert.Equal("last", Rx.NextMessage(client).GetText());
            Rx.AssertEnded(client); // a goodbye, not a broken connection: no fault before the end
        }

        [Fact]
        public void APoolConnectionRefusesAnOversizedFrameWithAnErrorFrame()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = cleanup.Add(new PipeServerChannel(name, 1, PoolOnly(o => o.MaxMessageSize = 1000)));
            using var raw = Wire.RawConnect(name);
            Wire.SendAll(raw, Wire.HelloFrame());
            Assert.Equal(FrameType.Hello, Wire.ReadFrame(raw).Type);
            Wire.SendAll(raw, Wire.Header(5000, (byte)FrameType.Text));
            Frame error = Wire.ReadFrame(raw);
            Assert.Equal(FrameType.Error, error.Type);
            Assert.True(Wire.ReadsToEof(raw));
            Assert.Equal(IpcErrorKind.MessageTooLarge, Rx.NextFault(server).Kind);
        }

        [Fact]
        public async Task AddWhileRoomAddsWhatFitsAndSignalsWhenItemsAreTaken()
        {
            var queue = new BoundedQueue<int>(3, long.MaxValue);
            var items = new List<int> { 1, 2, 3, 4, 5 };
            int next = queue.AddWhileRoom(items, 0, _ => 1, out Task? room);
            Assert.Equal(3, next);
            Assert.NotNull(room);
            Assert.False(room!.IsCompleted);
            var taken = new List<int>();
            Assert.Equal(2, queue.TakeBatch(taken, 2, Deadline.Infinite, CancellationToken.None));
            await Background.Finishes(room.ContinueWith(_ => 0, TaskScheduler.Default));
            next = queue.AddWhileRoom(items, next, _ => 1, out room);
            Assert.Equal(5, next);
            Assert.Null(room);
            Assert.Equal(3, queue.TakeBatch(taken, 10, Deadline.Infinite, CancellationToken.None));
            Assert.Equal(new[] { 1, 2, 3, 4, 5 }, taken);

            // Completing the queue releases a waiting adder, whose next try then throws.
            for (int i = 0; i < 3; i++) queue.TryAdd(i, 1, Deadline.Infinite, CancellationToken.None);
            Assert.Equal(0, queue.AddWhileRoom(items, 0, _ => 1, out room));
            queue.Complete();
            await Background.Finishes(room!.ContinueWith(_ => 0, TaskScheduler.Default));
            Assert.Throws<InvalidOperationException>(() => queue.AddWhileRoom(items, 0, _ => 1, out room));
        }
    }
}
