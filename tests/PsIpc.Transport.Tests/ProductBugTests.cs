using System;
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
    /// Each test pins a product bug found while writing this suite, asserting the correct behaviour: it failed
    /// while the bug was there and stays as a regression test once it is fixed. To see the rest of the suite
    /// alone: --filter "Category!=ProductBug". Some bugs are races, so their tests repeat the scenario; none
    /// can fail on a correct product, but a badly delayed machine could let a race go unnoticed once.
    /// </summary>
    [Trait("Category", "ProductBug")]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class ProductBugTests
    {
        private static readonly TimeSpan BugPatience = TimeSpan.FromSeconds(5);

        [Fact]
        public void FailedSecondServerLeavesNoFaultInTheFirstServersStream()
        {
            // Found: UnixPipeListener.IsServed probes the name by connecting to the live server and hanging
            // up, and the live server reported that probe as a ProtocolError ("closed the connection without
            // the PsIpc handshake"): the user of the first pipe saw an error caused by someone else's failed
            // New-IpcPipe.
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            var first = cleanup.Add(new PipeServerChannel(name, 1, null));
            Assert.Equal(IpcErrorKind.PipeNameInUse,
                Assert.Throws<IpcException>(() => cleanup.Add(new PipeServerChannel(name, 1, null))).Kind);
            PipeClientChannel client = cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None));
            client.Send(MessageFormat.Text, Wire.Text("hi"), Wire.PatientDeadline(), CancellationToken.None);

            var items = new List<IpcMessage>();
            bool gotMessage = false;
            // Everything up to the message, then anything else that shows up soon after.
            while (first.Receive(items, 16, gotMessage ? Deadline.After(TimeSpan.FromMilliseconds(500)) : Wire.PatientDeadline(), CancellationToken.None) > 0)
            {
                gotMessage = items.Exists(m => m.Fault == null);
            }

            Assert.True(gotMessage);
            IpcMessage? fault = items.Find(m => m.Fault != null);
            Assert.True(fault == null, $"the first server reported: {fault?.Fault?.Kind}: {fault?.Fault?.Message}");
        }

        [Fact]
        public void RefusedClientIsDisconnectedAfterTheErrorFrame()
        {
            // Found: OnHello's refusal (PipeBusy) set _localClose before End(), and End() only disposed the
            // stream when !_localClose; the connection was in neither _live nor _pending, so not even the
            // server's Close disposed it. The refused socket stayed open until the GC finalized it.
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            cleanup.Add(new PipeServerChannel(name, 1, null));
            cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None));
            Socket raw = cleanup.Add(Wire.RawConnect(name));
            raw.ReceiveTimeout = (int)BugPatience.TotalMilliseconds;

            Wire.SendAll(raw, Wire.HelloFrame());
            Frame error = Wire.ReadFrame(raw);

            Assert.Equal(FrameType.Error, error.Type);
            Assert.Equal(1, error.Payload[0]); // server full
            Assert.True(Wire.ReadsToEof(raw), "the server kept the refused connection open");
        }

        [Fact]
        public async Task CloseDoesNotWaitForAClientThatHasNotSaidHello()
        {
            // Found: a server-side writer waits for the client's Hello before it looks at its queue, so
            // Close()'s _outbound.Complete() did not reach it and Close waited for its whole deadline
            // (Dispose: CloseTimeout 30 s), or until HandshakeTimeout aborted the connection.
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            var server = new PipeServerChannel(name, 1, new ChannelOptions { HandshakeTimeout = TimeSpan.FromSeconds(20) });
            cleanup.Add(Wire.RawConnect(name)); // silent: connected, no Hello yet
            Socket garbage = cleanup.Add(Wire.RawConnect(name));
            Wire.SendAll(garbage, Wire.Text("garbage!"));
            // Connections are accepted in order: the garbage one's fault proves the silent one was accepted.
            Assert.Equal(IpcErrorKind.ProtocolError, Rx.NextFault(server).Kind);

            Task closing = Background.Run(() => server.Close(Deadline.Infinite));

            await Task.WhenAny(closing, Task.Delay(BugPatience));
            Assert.True(closing.IsCompleted, $"Close(Infinite) still waits after {BugPatience.TotalSeconds} s for a client that never said Hello");
        }

        [Fact]
        public void ClientIsClosedNotFaultedAfterTheServersGoodbye()
        {
            // Found: after the peer's Goodbye, End() completed the outbound queue and disposed the stream;
            // when the client's writer woke before End() cancelled _abort, it wrote its own Goodbye to the
            // closed socket, failed and recorded a PeerDisconnected fault: State turned Faulted although the
            // conversation ended cleanly. A race (1 to 10 runs in 100), so it is tried many times.
            const int rounds = 300;
            using var cleanup = new Cleanup();
            var clients = new List<PipeClientChannel>();
            for (int i = 0; i < rounds; i++)
            {
                string name = Wire.UniqueName();
                var server = cleanup.Add(new PipeServerChannel(name, 1, null));
                PipeClientChannel client = cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None));
                clients.Add(client);
                client.Send(MessageFormat.Text, Wire.Text("x"), Wire.PatientDeadline(), CancellationToken.None);
                Rx.NextMessage(server);
                server.Close(Wire.PatientDeadline());
                Rx.AssertEnded(client);
            }

            SpinWait.SpinUntil(() => clients.Exists(c => c.State == ChannelState.Faulted), 500);
            int faulted = clients.FindAll(c => c.State == ChannelState.Faulted).Count;
            Assert.True(faulted == 0, $"{faulted} of {rounds} clients are Faulted after the server's clean Goodbye");
        }
        [Fact]
        public async Task SendWaitingForAClientReachesItAfterTheHandshake()
        {
            // Found in the inline-write path (StreamConnection.TryWriteInline): it requires PeerHello != null,
            // but on the server PeerHello is set, and the connection joins _live, before the writer thread has
            // written the server's own Hello. A Send that was waiting for a client wakes on OnHello's pulse and
            // writes its frame first; the client's Connect then fails with ProtocolError "its first frame is
            // not a Hello". Repeated because it is a race (it failed on the first round here).
            for (int round = 0; round < 30; round++)
            {
                using var cleanup = new Cleanup();
                string name = Wire.UniqueName();
                PipeServerChannel server = cleanup.Add(new PipeServerChannel(name, 1, null));
                Task sending = Background.Run(() => server.Send(MessageFormat.Text, Wire.Text("first"), Wire.PatientDeadline(), CancellationToken.None));
                await Background.AssertStillBlocked(sending);

                PipeClientChannel client = cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None));

                await sending.WaitAsync(Wire.Patience);
                Assert.Equal("first", Rx.NextMessage(client).GetText());
            }
        }

        [Fact]
        public void CancellationOfABlockedTakeIsNeverLost()
        {
            // Found: GateWait.Wait checks the token, then registers the pulse callback. When the token is cancelled
            // between the two, Register runs the callback at once on this thread: it pulses a gate nobody waits
            // on yet, and Monitor.Wait then sleeps until the deadline. With Deadline.Infinite (Receive-IpcMessage
            // without -TimeoutSeconds, stopped with Ctrl+C) it never returns. Lost about 1 cancel in 700 here.
            const int rounds = 3000;
            var queue = new BoundedQueue<int>(10, 10);
            try
            {
                for (int i = 0; i < rounds; i++)
                {
                    using var cts = new CancellationTokenSource();
                    var taker = new Thread(() =>
                    {
                        try { queue.TakeBatch(new List<int>(), 1, Deadline.Infinite, cts.Token); }
                        catch (OperationCanceledException) { }
                    }) { IsBackground = true };
                    taker.Start();
                    Thread.SpinWait(i % 2000); // lands the cancel at varying points of the taker's path
                    cts.Cancel();
                    // A hang guard, not a speed check: a cancelled take returns at once.
                    Assert.True(taker.Join(BugPatience), $"round {i}: a take with a cancelled token was still waiting after {BugPatience.TotalSeconds} s");
                }
            }
            finally
            {
                queue.CompleteAndClear(); // releases a taker that lost its cancellation
            }
        }
    }
}
