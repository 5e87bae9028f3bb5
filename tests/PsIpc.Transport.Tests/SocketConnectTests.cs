using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using PsIpc.Transport.Platform;
using PsIpc.Transport.Sockets;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// SocketEndpoints connects without ConnectAsync (which would leave the socket in .NET's emulated
    /// blocking mode): what comes back is a connected, blocking socket, and every way a connect ends
    /// (refused, backlog full until the deadline, cancelled) is still the error it was.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class SocketConnectTests
    {
        private static Deadline Patient() => Deadline.After(TimeSpan.FromSeconds(10));

        [Fact]
        public void TcpConnectReturnsAConnectedBlockingSocket()
        {
            using var listener = SocketEndpoints.ListenTcp(IPAddress.Loopback, 0, "test");
            int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
            using Socket client = SocketEndpoints.ConnectTcp("127.0.0.1", port, "test", Patient(), CancellationToken.None);
            using Socket served = listener.Accept();
            Assert.True(client.Connected);
            Assert.True(client.Blocking);
            Assert.False(IsNonBlockingAtTheKernel(client), "the connected socket is in .NET's emulated blocking mode");
            Assert.Equal(port, ((IPEndPoint)client.RemoteEndPoint!).Port);
            client.Send(new byte[] { 1, 2, 3 });
            var buffer = new byte[3];
            Assert.Equal(3, served.Receive(buffer));
            Assert.Equal(new byte[] { 1, 2, 3 }, buffer);
        }

        [Fact]
        public void TcpConnectToAClosedPortIsRefused()
        {
            int port;
            using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            }
            var e = Assert.Throws<IpcException>(() => SocketEndpoints.ConnectTcp("127.0.0.1", port, "test", Patient(), CancellationToken.None));
            Assert.Equal(IpcErrorKind.ConnectionRefused, e.Kind);
        }

        [Fact]
        public void UnixConnectReturnsAConnectedBlockingSocket()
        {
            string path = TempSocketPath();
            using var listener = SocketEndpoints.ListenUnix(path, "test");
            try
            {
                using Socket client = SocketEndpoints.ConnectUnix(path, "test", Patient(), CancellationToken.None);
                using Socket served = listener.Accept();
                Assert.True(client.Connected);
                Assert.True(client.Blocking);
                Assert.False(IsNonBlockingAtTheKernel(client), "the connected socket is in .NET's emulated blocking mode");
                Assert.Equal(0, client.SendTimeout);
                served.Send(new byte[] { 7 });
                var buffer = new byte[1];
                Assert.Equal(1, client.Receive(buffer));
                Assert.Equal(7, buffer[0]);
            }
            finally
            {
                SocketEndpoints.TryDelete(path);
            }
        }

        [Fact]
        public void UnixConnectWaitsWhileTheBacklogIsFullThenTimesOut()
        {
            string path = TempSocketPath();
            using var listener = SocketEndpoints.ListenUnix(path, "test");
            var queued = new List<Socket>();
            try
            {
                FillBacklog(listener, path, queued);
                DateTime start = DateTime.UtcNow;
                var e = Assert.Throws<IpcException>(() =>
                    SocketEndpoints.ConnectUnix(path, "test", Deadline.After(TimeSpan.FromMilliseconds(300)), CancellationToken.None));
                Assert.Equal(IpcErrorKind.ConnectTimeout, e.Kind);
                Assert.True(DateTime.UtcNow - start >= TimeSpan.FromMilliseconds(250), "it gave up before the deadline");
            }
            finally
            {
                foreach (Socket s in queued) s.Dispose();
                SocketEndpoints.TryDelete(path);
            }
        }

        [Fact]
        public void UnixConnectGetsInOnceTheServerAcceptsAndIsCancellable()
        {
            string path = TempSocketPath();
            using var listener = SocketEndpoints.ListenUnix(path, "test");
            var queued = new List<Socket>();
            try
            {
                FillBacklog(listener, path, queued);
                using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
                {
                    Assert.ThrowsAny<OperationCanceledException>(() => SocketEndpoints.ConnectUnix(path, "test", Patient(), cancel.Token));
                }
                // The server takes its queued clients: a waiting connect then completes.
                var drain = new Thread(() =>
                {
                    Thread.Sleep(100);
                    for (int i = 0; i < queued.Count + 1; i++) listener.Accept().Dispose();
                }) { IsBackground = true };
                drain.Start();
                using Socket client = SocketEndpoints.ConnectUnix(path, "test", Patient(), CancellationToken.None);
                Assert.True(client.Connected);
                Assert.True(client.Blocking);
                Assert.True(drain.Join(TimeSpan.FromSeconds(10)));
            }
            finally
            {
                foreach (Socket s in queued) s.Dispose();
                SocketEndpoints.TryDelete(path);
            }
        }

        [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
        private static extern int fcntl(IntPtr fd, int command, int argument);

        // .NET keeps "Blocking = true" but emulates it over a non-blocking descriptor once a socket went
        // asynchronous: only the descriptor's own flags tell (F_GETFL = 3; O_NONBLOCK is 0x800 on Linux, 0x4 on macOS).
        private static bool IsNonBlockingAtTheKernel(Socket socket)
        {
            if (!OperatingSystem.IsLinux()) return false; // other systems connect asynchronously (SocketEndpoints)
            int flags = fcntl(socket.Handle, 3, 0);
            Assert.True(flags >= 0, $"fcntl failed: {Marshal.GetLastWin32Error()}");
            return (flags & 0x800) != 0;
        }

        private static string TempSocketPath() =>
            Path.Combine(Path.GetTempPath(), $"psipc-connect-{Environment.ProcessId}-{Guid.NewGuid():N}".Substring(0, 40) + ".sock");

        // Connects non-blocking clients nobody accepts until the kernel refuses one more (EAGAIN).
        private static void FillBacklog(Socket listener, string path, List<Socket> queued)
        {
            for (int i = 0; i < 10000; i++)
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
                try
                {
                    s.Connect(new UnixEndPoint(path));
                    queued.Add(s);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
                {
                    s.Dispose();
                    return;
                }
            }
            throw new InvalidOperationException("the listen backlog never filled");
        }
    }
}
