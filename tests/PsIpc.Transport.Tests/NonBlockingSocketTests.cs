using System;
using System.Net.Sockets;
using System.Text;
using PsIpc.Transport.Platform;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// The non-blocking read a spinning requester or receiver takes its bytes with, and the inline write's send
    /// (Platform/NonBlockingSocket): nothing there is
    /// -1 at once, bytes are taken as they are, the end of the stream is 0, a reset throws as Socket.Receive does, and a closed
    /// socket throws ObjectDisposedException (the read paths catch it as the end of the connection); a send takes a
    /// small frame whole or says the socket is full (-1), and a gone peer is ConnectionReset.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class NonBlockingSocketTests
    {
        private static (Socket, Socket) Pair()
        {
            string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"psipc-peek-{Guid.NewGuid():N}.sock");
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            client.Connect(new UnixDomainSocketEndPoint(path));
            Socket server = listener.Accept();
            System.IO.File.Delete(path);
            return (client, server);
        }

        [Fact]
        public void IsSupportedOnLinux()
        {
            Assert.Equal(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), NonBlockingSocket.IsSupported);
        }

        [Fact]
        public void NothingThereIsMinusOneWithoutBlocking()
        {
            (Socket a, Socket b) = Pair();
            using (a)
            using (b)
            {
                var buffer = new byte[16];
                Assert.True(b.Blocking); // a blocking socket: the flag, not the descriptor's mode, keeps the call from waiting
                Assert.Equal(-1, NonBlockingSocket.TryReceive(b, buffer, 0, buffer.Length));
            }
        }

        [Fact]
        public void TakesWhatIsThereAndLeavesTheRestForTheNextRead()
        {
            (Socket a, Socket b) = Pair();
            using (a)
            using (b)
            {
                a.Send(Encoding.ASCII.GetBytes("hello world"));
                var buffer = new byte[32];
                Assert.Equal(5, NonBlockingSocket.TryReceive(b, buffer, 10, 5));
                Assert.Equal("hello", Encoding.ASCII.GetString(buffer, 10, 5));
                int rest = b.Receive(buffer); // the usual read goes on where it stopped
                Assert.Equal(" world", Encoding.ASCII.GetString(buffer, 0, rest));
                Assert.Equal(-1, NonBlockingSocket.TryReceive(b, buffer, 0, buffer.Length));
            }
        }

        [Fact]
        public void EndOfStreamIsZero()
        {
            (Socket a, Socket b) = Pair();
            using (b)
            {
                a.Shutdown(SocketShutdown.Send);
                a.Dispose();
                Assert.Equal(0, NonBlockingSocket.TryReceive(b, new byte[8], 0, 8));
            }
        }

        [Fact]
        public void APeerResetIsThrownAsTheUsualReadWouldThrowIt()
        {
            (Socket a, Socket b) = Pair();
            using (b)
            {
                b.Send(new byte[] { 1, 2, 3 });
                a.Dispose(); // closed with unread bytes: the peer's next read fails (ECONNRESET), once
                var reset = Assert.Throws<SocketException>(() => NonBlockingSocket.TryReceive(b, new byte[8], 0, 8));
                Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
            }
        }

        [Fact]
        public void ClosedSocketThrowsObjectDisposed()
        {
            (Socket a, Socket b) = Pair();
            using (a)
            {
                b.Dispose();
                Assert.Throws<ObjectDisposedException>(() => NonBlockingSocket.TryReceive(b, new byte[8], 0, 8));
            }
        }

        [Fact]
        public void SendWritesWholeSmallFramesUntilTheSocketIsFullThenMinusOne()
        {
            (Socket a, Socket b) = Pair();
            using (a)
            using (b)
            {
                var frame = new byte[4096];
                int sent = 0;
                while (true)
                {
                    int n = NonBlockingSocket.TrySend(a, frame, 0, frame.Length);
                    if (n < 0) break; // full: the caller queues the frame instead of waiting
                    Assert.Equal(frame.Length, n); // a Unix stream socket takes a small write whole or not at all
                    sent += n;
                }
                Assert.True(sent > 0);
                var into = new byte[65536];
                long drained = 0;
                while (drained < sent) drained += b.Receive(into);
                Assert.Equal(sent, drained);
                Assert.Equal(frame.Length, NonBlockingSocket.TrySend(a, frame, 0, frame.Length)); // room again
            }
        }

        [Fact]
        public void SendToAGonePeerThrowsConnectionReset()
        {
            (Socket a, Socket b) = Pair();
            using (a)
            {
                b.Dispose();
                var gone = Assert.Throws<SocketException>(() => NonBlockingSocket.TrySend(a, new byte[8], 0, 8));
                Assert.Equal(SocketError.ConnectionReset, gone.SocketErrorCode);
            }
        }

        [Fact]
        public void RangeOutsideTheBufferIsRefused()
        {
            (Socket a, Socket b) = Pair();
            using (a)
            using (b)
            {
                Assert.Throws<ArgumentOutOfRangeException>(() => NonBlockingSocket.TryReceive(b, new byte[8], 4, 8));
                Assert.Throws<ArgumentOutOfRangeException>(() => NonBlockingSocket.TryReceive(b, new byte[8], 0, 0));
            }
        }
    }
}
