using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Connections;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// CI's fuzz run lost its test host to an InvalidOperationException ("The stream does not support writing") thrown
    /// by NetworkStream.Write on a server connection's writer thread, as it sent its hello. Cause: the reader thread,
    /// at the client's end of stream, ended the connection and disposed the stream while the writer was inside Write;
    /// NetworkStream.Write checks "disposed", then "writable", and Dispose clears both in that order, so a Dispose
    /// between the two checks gives that exception. Since then the hello is written by the reader thread itself, but a
    /// drain on the thread pool still writes while the reader may reach the end: these tests hold the first write
    /// after the hello (a message too large to be written inline, so the drain writes it through the stream) and end
    /// the connection meanwhile, by the peer's end of stream and by a local abort: the stream must not be disposed
    /// until the write has returned (the write fails instead, because the socket was shut down), and the connection
    /// must end.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class ConnectionShutdownRaceTests
    {
        public enum Ending
        {
            PeerEndOfStream, // what CI hit: the reader reads the end while the writer sends the hello
            LocalAbort,      // Close-IpcChannel's last step, Ctrl+C, a handshake timeout, an idle expiry
        }

        [Theory]
        [InlineData(Ending.PeerEndOfStream)]
        [InlineData(Ending.LocalAbort)]
        public void TheStreamIsNotDisposedWhileTheWriterIsInsideAWrite(Ending ending)
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            peer.Connect(listener.LocalEndPoint!);
            Socket accepted = listener.Accept();
            var stream = new HeldFirstWriteStream(new NetworkStream(accepted, ownsSocket: true), peer);
            var owner = new Owner();
            var connected = new ConnectedStream(stream, accepted, new PeerIdentity("test", null, true, PeerAuthentication.None));
            var connection = new MessageConnection(connected, owner, MessageFraming.For(SocketFraming.LengthPrefixed),
                new ChannelOptions(), "race", isServerSide: true);
            try
            {
                Assert.True(connection.Start());
                // The client's hello opens the connection; the server answers with its own, which the peer reads whole so
                // that the held write below sees nothing unread on the peer's side until the server shuts its socket down.
                peer.Send(Wire.HelloFrame());
                ReadOneFrame(peer);
                var sending = System.Threading.Tasks.Task.Run(() =>
                {
                    try { connection.SendMessage(MessageFormat.Bytes, new byte[100 * 1024], Wire.PatientDeadline(), CancellationToken.None); }
                    catch (IpcException) { } // the connection may end first
                });
                Assert.True(stream.WriteEntered.Wait(Wire.Patience), "the drain began writing the message (a safety net)");

                if (ending == Ending.PeerEndOfStream) peer.Shutdown(SocketShutdown.Send);
                else connection.Abort(null);

                Assert.True(owner.Ended.Wait(Wire.Patience), "the connection ended (a safety net)");
                Assert.True(SpinWait.SpinUntil(() => stream.IsDisposed, Wire.Patience), "the stream was disposed in the end (a safety net)");
                Assert.False(stream.DisposedDuringWrite, "the stream was disposed while the writer was inside Write");
                Assert.Null(stream.WriteFailure as InvalidOperationException);
                Assert.True(stream.WriteFailure is IOException, $"the held write failed as a write to a shut-down socket does, not with {stream.WriteFailure?.GetType().Name ?? "no error"}");
            }
            finally
            {
                stream.Release();
                connection.Abort(null);
            }
        }

        private static void ReadOneFrame(Socket peer)
        {
            byte[] header = ReceiveExactly(peer, 5);
            ReceiveExactly(peer, (int)FrameHeader.ReadLength(header, 0));
        }

        private static byte[] ReceiveExactly(Socket peer, int count)
        {
            var bytes = new byte[count];
            peer.ReceiveTimeout = (int)Wire.Patience.TotalMilliseconds; // a safety net
            for (int got = 0; got < count;)
            {
                int n = peer.Receive(bytes, got, count - got, SocketFlags.None);
                if (n == 0) throw new EndOfStreamException("the server closed before its hello was read");
                got += n;
            }
            return bytes;
        }

        /// <summary>
        /// A NetworkStream whose first Write after the hello waits, inside the call, until this side of the socket is shut down or
        /// closed (the peer then reads the end) or the stream is disposed. Disposed during that Write, it throws what
        /// NetworkStream throws when a Dispose falls inside its Write.
        /// </summary>
        private sealed class HeldFirstWriteStream : Stream
        {
            private readonly NetworkStream _inner;
            private readonly Socket _peer;
            private readonly ManualResetEventSlim _disposing = new ManualResetEventSlim(false);
            private readonly ManualResetEventSlim _released = new ManualResetEventSlim(false);
            private int _writes;
            private volatile bool _inWrite;

            public HeldFirstWriteStream(NetworkStream inner, Socket peer)
            {
                _inner = inner;
                _peer = peer;
            }

            public ManualResetEventSlim WriteEntered { get; } = new ManualResetEventSlim(false);

            public bool DisposedDuringWrite { get; private set; }

            public bool IsDisposed { get; private set; }

            public Exception? WriteFailure { get; private set; }

            public void Release() => _released.Set();

            public override void Write(byte[] buffer, int offset, int count)
            {
                if (Interlocked.Increment(ref _writes) != 2) // the first is the hello
                {
                    _inner.Write(buffer, offset, count);
                    return;
                }
                _inWrite = true;
                try
                {
                    WriteEntered.Set();
                    // Held until the connection ends its stream one way or the other (state, polled in slices).
                    var patience = System.Diagnostics.Stopwatch.StartNew();
                    while (!_disposing.IsSet && !_released.IsSet && !_peer.Poll(20_000, SelectMode.SelectRead) && patience.Elapsed < Wire.Patience)
                    {
                    }
                    if (_disposing.IsSet) throw new InvalidOperationException("The stream does not support writing.");
                    _inner.Write(buffer, offset, count);
                }
                catch (Exception e)
                {
                    WriteFailure = e;
                    throw;
                }
                finally
                {
                    _inWrite = false;
                }
            }

            protected override void Dispose(bool disposing)
            {
                if (disposing && !IsDisposed)
                {
                    if (_inWrite) DisposedDuringWrite = true;
                    _disposing.Set();
                    _inner.Dispose();
                    IsDisposed = true;
                }
                base.Dispose(disposing);
            }

            public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
            public override void Flush() => _inner.Flush();
            public override bool CanRead => true;
            public override bool CanWrite => true;
            public override bool CanSeek => false;
            public override long Length => throw new NotSupportedException();
            public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
        }

        private sealed class Owner : IConnectionOwner
        {
            public BoundedQueue<IpcMessage> Inbound { get; } = new BoundedQueue<IpcMessage>(1000, 1 << 20);

            public ManualResetEventSlim Ended { get; } = new ManualResetEventSlim(false);

            public bool KeepsHalfClosed => false;

            public IpcException? OnOpened(MessageConnection connection) => null;

            public void OnEnded(MessageConnection connection, IpcException? fault) => Ended.Set();
        }
    }
}
