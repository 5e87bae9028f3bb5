using System;
using System.Collections.Generic;
using System.Net;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// A connection whose reader waits for room in the server's queue holds the budget shares of the messages it
    /// could not hand over yet. When the connection is aborted meanwhile (here: the idle timeout), those shares
    /// must go back to the server's budget, or every such connection shrinks it for good.
    /// </summary>
    public class ReceiveBudgetAbortTests
    {
        [Fact]
        public void MessagesAConnectionCouldNotQueueBeforeItWasAbortedGiveTheirShareBack()
        {
            // One message fits the server's queue; the reader waits with the others until the idle sweep closes it.
            var options = new ChannelOptions { ReceiveBufferMessages = 1, IdleTimeout = TimeSpan.FromSeconds(1) };
            using var server = SocketServerChannel.ListenTcp(null, IPAddress.Loopback, 0, SocketFraming.LengthPrefixed, 4, options);
            ReceiveBudget budget = server.Options.ReceiveBudget!;
            using (var client = SocketClientChannel.ConnectTcp("127.0.0.1", server.Port, SocketFraming.LengthPrefixed, Wire.PatientDeadline(), CancellationToken.None))
            {
                for (int i = 0; i < 5; i++) client.Send(MessageFormat.Bytes, new byte[1000], Wire.PatientDeadline(), CancellationToken.None);
                client.Flush(Wire.PatientDeadline(), CancellationToken.None);
                Assert.True(SpinWait.SpinUntil(() => server.IdleConnectionsClosed == 1, TimeSpan.FromSeconds(60)), "the idle sweep closes the waiting connection (a safety net)");
            }
            // Take everything the server queued (the one message, the connection's end): what is left held is a leak.
            var batch = new List<IpcMessage>();
            while (server.Receive(batch, 100, Deadline.After(TimeSpan.FromSeconds(1)), CancellationToken.None) > 0) batch.Clear();
            Assert.True(SpinWait.SpinUntil(() => budget.Used == 0, Wire.Patience), $"{budget.Used} bytes of the budget are still held");
        }
    }
}
