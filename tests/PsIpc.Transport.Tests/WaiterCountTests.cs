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
    /// IpcChannel.Waiters and ConnectWaiters: what tests of Ctrl+C wait for before they stop a command
    /// (tests/Pester/TestHelpers.ps1, Stop-WhenWaiting). A count above 0 must mean a call holds its token.
    /// </summary>
    public class WaiterCountTests
    {
        private static void WaitFor(Func<bool> condition) =>
            Assert.True(SpinWait.SpinUntil(condition, Wire.Patience), "the state was not reached (a safety net, not a speed test)");

        [Fact]
        public async Task AReceiveIsCountedWhileItWaitsAndNotAfterACancel()
        {
            using var server = new PipeServerChannel(Wire.UniqueName(), 1, null);
            Assert.Equal(0, server.Waiters);
            using var stop = new CancellationTokenSource();
            Task<int> receive = Background.Run(() => server.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, stop.Token));
            WaitFor(() => server.Waiters == 1);
            stop.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Background.Finishes(receive));
            Assert.Equal(0, server.Waiters);
        }

        [Fact]
        public async Task ASendThatWaitsForAClientIsCountedAndASendThatFailsIsNotLeftCounted()
        {
            using var server = new PipeServerChannel(Wire.UniqueName(), 1, null);
            Task<int> send = Background.Run(() =>
            {
                server.Send(MessageFormat.Text, Wire.Text("x"), Deadline.After(TimeSpan.FromMinutes(5)), CancellationToken.None);
                return 0;
            });
            WaitFor(() => server.Waiters == 1);
            server.Close(Wire.PatientDeadline());
            await Assert.ThrowsAnyAsync<IpcException>(() => Background.Finishes(send));
            Assert.Equal(0, server.Waiters);
        }

        [Fact]
        public void ConnectWaitsAreCountedUntilTheirScopeEnds()
        {
            int before = IpcChannel.ConnectWaiters;
            using (IpcChannel.BeginConnectWait())
            {
                Assert.True(IpcChannel.ConnectWaiters > before);
            }
            WaitFor(() => IpcChannel.ConnectWaiters <= before);
        }
    }
}
