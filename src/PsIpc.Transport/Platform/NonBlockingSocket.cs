using System;
using System.IO;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;

namespace PsIpc.Transport.Platform
{
    /// <summary>
    /// Reads and writes that never block, for the hot path of a local round trip. One recv(2) with MSG_DONTWAIT both
    /// asks whether bytes are there and takes them, where poll(2) then read(2) cost two system calls (1.4-2.2 us each
    /// on the machine of docs/benchmarks.md); one send(2) with MSG_DONTWAIT writes a small frame or says the socket is
    /// full, where poll(2) then write(2) cost two. The flag works whatever the descriptor's mode, so the Socket's own
    /// blocking calls are unaffected. Linux and macOS on .NET Core 3.0 or later (Socket.SafeHandle, found once by
    /// reflection: this assembly targets netstandard2.0, and the SafeHandle keeps the descriptor open and its number
    /// unreused during the call); elsewhere <see cref="IsSupported"/> is false and callers poll as before.
    /// </summary>
    internal static unsafe class NonBlockingSocket
    {
        private static readonly Func<Socket, SafeHandle>? s_handleOf = FindHandleGetter();
        private static readonly int s_sendFlags = Libc.MsgDontWait | (Libc.IsLinux ? Libc.MsgNoSignalLinux : 0);

        public static bool IsSupported => s_handleOf != null;

        /// <summary>
        /// Bytes read into the buffer (more than 0), 0 at the end of the stream, or -1 when nothing is there now. A failed
        /// read throws, as Socket.Receive would (the kernel reports such an error once: it cannot be left to the next
        /// read): SocketException ConnectionReset when the peer reset the connection, IOException otherwise.
        /// ObjectDisposedException once the socket is closed.
        /// </summary>
        public static int TryReceive(Socket socket, byte[] buffer, int offset, int count) => Transfer(socket, buffer, offset, count, send: false);

        /// <summary>
        /// Bytes written (more than 0; fewer than <paramref name="count"/> only where the socket takes part of a write,
        /// which a Unix stream socket never does for a write that fits in one of its buffers), or -1 when the socket has
        /// no room now. A failed write throws as <see cref="TryReceive"/> does (a gone peer: ConnectionReset).
        /// </summary>
        public static int TrySend(Socket socket, byte[] buffer, int offset, int count) => Transfer(socket, buffer, offset, count, send: true);

        // One recv(2) or send(2) that does not wait, retried only when a signal interrupted it.
        private static int Transfer(Socket socket, byte[] buffer, int offset, int count, bool send)
        {
            CheckRange(buffer, offset, count);
            SafeHandle handle = s_handleOf!(socket);
            fixed (byte* start = &buffer[offset])
            {
                while (true)
                {
                    long n = send
                        ? (long)Libc.Send(handle, start, (UIntPtr)(uint)count, s_sendFlags)
                        : (long)Libc.Receive(handle, start, (UIntPtr)(uint)count, Libc.MsgDontWait);
                    if (n >= 0) return (int)n;
                    int errno = Libc.LastError;
                    if (errno == Libc.EAGAIN) return -1;
                    if (errno != Libc.EINTR) throw Failure(send ? "send" : "recv", errno);
                }
            }
        }

        private static void CheckRange(byte[] buffer, int offset, int count)
        {
            if (buffer == null) throw new ArgumentNullException(nameof(buffer));
            if (count <= 0 || offset < 0 || offset > buffer.Length - count) throw new ArgumentOutOfRangeException(nameof(count));
        }

        private static Exception Failure(string call, int errno) =>
            errno == Libc.ECONNRESET || errno == Libc.EPIPE
                ? new SocketException((int)SocketError.ConnectionReset)
                : new IOException($"{call}(2) on the socket failed with errno {errno}.");

        private static Func<Socket, SafeHandle>? FindHandleGetter()
        {
            if (!(Libc.IsLinux || Libc.IsMacOS)) return null;
            MethodInfo? getter = typeof(Socket).GetProperty("SafeHandle", BindingFlags.Public | BindingFlags.Instance)?.GetGetMethod();
            if (getter == null || !typeof(SafeHandle).IsAssignableFrom(getter.ReturnType)) return null;
            return (Func<Socket, SafeHandle>)Delegate.CreateDelegate(typeof(Func<Socket, SafeHandle>), getter);
        }
    }
}
