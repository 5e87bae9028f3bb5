using System;
using System.Collections.Generic;
using System.Net;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>Alone in the process: the counts below are of every reader thread the process starts.</summary>
    [CollectionDefinition(Name, DisableParallelization = true)]
    public sealed class ReaderThreadsCollection
    {
        public const string Name = "reader threads";
    }

    /// <summary>
    /// Connect/close churn reuses reader threads (issue 13, soak): a client per cycle and a server's first connections
    /// each read on a dedicated thread, and every thread start grew the process by the malloc arena glibc gives it. The
    /// threads are now kept when their loop ends and given the next one (<see cref="ReaderThreads"/>).
    /// </summary>
    [Collection(ReaderThreadsCollection.Name)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class ReaderThreadReuseTests
    {
        private const int Cycles = 40;

        // The readers of the last cycle went back to waiting (Patience is a safety net, not a speed check): the next
        // cycle then takes them, the most recently idle first.
        private static void WaitUntilParked(long parked) =>
            Assert.True(SpinWait.SpinUntil(() => ReaderThreads.Parked >= parked, Wire.Patience), $"{ReaderThreads.Parked} reader threads parked, expected {parked}");

        [Fact]
        public void LoopsRunOneAfterAnotherShareAThread()
        {
            var threads = new HashSet<int>();
            for (int i = 0; i < Cycles; i++)
            {
                using var ran = new ManualResetEventSlim(false);
                long parked = ReaderThreads.Parked;
                int id = 0;
                ReaderThreads.Run(() =>
                {
                    id = Environment.CurrentManagedThreadId;
                    ran.Set();
                });
                Assert.True(ran.Wait(Wire.Patience), "the loop ran");
                threads.Add(id);
                WaitUntilParked(parked + 1);
            }
            Assert.True(threads.Count == 1, $"{Cycles} loops one after another ran on {threads.Count} threads");
        }

        [Fact]
        public void ConnectAndCloseChurnStartsNoThreadPerConnection()
        {
            using var cleanup = new Cleanup();
            SocketServerChannel server = cleanup.Add(SocketServerChannel.ListenTcp(null, IPAddress.Loopback, 0, SocketFraming.LengthPrefixed, 16, new ChannelOptions()));
            var batch = new List<IpcMessage>();
            long startedBefore = 0;
            for (int i = 0; i < Cycles; i++)
            {
                if (i == 1) startedBefore = ReaderThreads.Started; // after the first cycle: both readers exist
                long parked = ReaderThreads.Parked;
                using (var client = SocketClientChannel.ConnectTcp("127.0.0.1", server.Port, SocketFraming.LengthPrefixed, Wire.PatientDeadline(), CancellationToken.None))
                {
                    client.Send(MessageFormat.Text, Wire.Text($"cycle {i}"), Wire.PatientDeadline(), CancellationToken.None);
                    client.Flush(Wire.PatientDeadline(), CancellationToken.None);
                    Assert.Equal($"cycle {i}", Rx.NextMessage(server).GetText());
                    client.Close(Wire.PatientDeadline());
                }
                Assert.True(SpinWait.SpinUntil(() =>
                {
                    batch.Clear();
                    server.Receive(batch, 16, Deadline.After(TimeSpan.Zero), CancellationToken.None);
                    return server.PeerCount == 0;
                }, Wire.Patience), "the server saw the client leave");
                WaitUntilParked(parked + 2); // the client's reader and the server connection's
            }
            long started = ReaderThreads.Started - startedBefore;
            // Before, each cycle started two (the client's reader and the server connection's): 78 here.
            Assert.True(started == 0, $"{Cycles - 1} connect/close cycles started {started} reader threads");
        }
    }
}
