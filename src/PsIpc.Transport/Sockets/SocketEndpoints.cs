using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Sockets
{
    /// <summary>Binding listeners and connecting clients, with the errors users see for each way it fails.</summary>
    internal static class SocketEndpoints
    {
        public const int Backlog = 512;

        /// <summary>Binds and listens on a TCP address; port 0 takes a free port.</summary>
        /// <exception cref="IpcException">AddressInUse, ConnectFailed.</exception>
        public static Socket ListenTcp(IPAddress address, int port, string name)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                // A listener must not share its port: on Windows, SO_EXCLUSIVEADDRUSE; on Unix the default already refuses.
                if (UnixNative.IsWindows) socket.ExclusiveAddressUse = true;
                socket.Bind(new IPEndPoint(address, port));
                socket.Listen(Backlog);
                return socket;
            }
            catch (SocketException e)
            {
                socket.Dispose();
                if (e.SocketErrorCode == SocketError.AddressAlreadyInUse || e.SocketErrorCode == SocketError.AccessDenied && port != 0)
                {
                    throw new IpcException(IpcErrorKind.AddressInUse,
                        $"The port {port} on {address} is already in use by another program. Choose another -Port, or -Port 0 for a free one.", name, e);
                }
                throw new IpcException(IpcErrorKind.ConnectFailed, $"Cannot listen on {address} port {port}: {e.Message}", name, e);
            }
        }

        /// <summary>Checks that a Unix socket path fits sun_path.</summary>
        /// <exception cref="IpcException">SocketPathTooLong, SocketPathInvalid.</exception>
        public static string CheckUnixPath(string path, string name)
        {
            if (path.IndexOf('\0') >= 0)
            {
                throw new IpcException(IpcErrorKind.SocketPathInvalid, "The Unix socket path contains a NUL character, which no file name can hold.", name);
            }
            string full = Path.GetFullPath(path);
            int bytes = Encoding.UTF8.GetByteCount(full);
            if (bytes > UnixNative.MaxSocketPathBytes)
            {
                throw new IpcException(IpcErrorKind.SocketPathTooLong,
                    $"The Unix socket path '{full}' is {bytes} bytes; the system allows at most {UnixNative.MaxSocketPathBytes}. Use a shorter path.", name);
            }
            return full;
        }

        /// <summary>
        /// Binds a Unix socket at <paramref name="path"/> with mode 0600, creating its directory with mode 0700
        /// when it does not exist. A socket file that a live server holds is never taken over; a stale one
        /// (nobody listens) is replaced; a file that is not a socket is left alone.
        /// </summary>
        /// <exception cref="IpcException">SocketPathTooLong, SocketPathInvalid, AddressInUse, AccessDenied.</exception>
        public static Socket ListenUnix(string path, string name)
        {
            path = CheckUnixPath(path, name);
            string directory = Path.GetDirectoryName(path);
            if (!string.IsNullOrEmpty(directory) && !Directory.Exists(directory))
            {
                CreatePrivateDirectory(directory, path, name);
            }
            else if (!string.IsNullOrEmpty(directory))
            {
                CheckDirectoryIsSafe(directory, path, name);
            }
            Socket socket = BindUnixExclusive(path, name);
            try
            {
                UnixNative.SetMode(path, Convert.ToUInt32("600", 8));
                socket.Listen(Backlog);
                return socket;
            }
            catch (Exception e) when (e is IOException || e is SocketException)
            {
                socket.Dispose();
                TryDelete(path);
                throw new IpcException(IpcErrorKind.SocketPathInvalid,
                    $"The Unix socket '{path}' was bound but cannot be made private or listened on ({e.Message}). Use a -Path on a local file system.", name, e);
            }
            catch
            {
                socket.Dispose();
                TryDelete(path);
                throw;
            }
        }

        /// <exception cref="IpcException">SocketPathInvalid, AccessDenied.</exception>
        private static void CreatePrivateDirectory(string directory, string path, string name)
        {
            try
            {
                Directory.CreateDirectory(directory);
                UnixNative.SetMode(directory, Convert.ToUInt32("700", 8));
            }
            catch (UnauthorizedAccessException e)
            {
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"Cannot create the directory '{directory}' of the Unix socket '{path}': {e.Message} Use a directory of your own.", name, e);
            }
            catch (IOException e)
            {
                // A part of the path is a file, or a file system where nothing can be created (/proc).
                throw new IpcException(IpcErrorKind.SocketPathInvalid,
                    $"Cannot create the directory '{directory}' of the Unix socket '{path}': {e.Message} Choose a -Path in a directory you can create.", name, e);
            }
        }

        /// <summary>
        /// A socket in a directory that another user may write to (without the sticky bit) could be replaced by
        /// theirs between two connects; a directory of another user (not root) is theirs to change. Both are refused.
        /// </summary>
        /// <exception cref="IpcException">AccessDenied.</exception>
        private static void CheckDirectoryIsSafe(string directory, string path, string name)
        {
            if (!UnixNative.TryGetDirectoryOwnerAndMode(directory, out uint owner, out uint mode))
            {
                // Fail closed: a directory whose owner and mode cannot be read cannot be trusted either.
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"Cannot check who may write to the directory of the Unix socket '{path}' (errno {System.Runtime.InteropServices.Marshal.GetLastWin32Error()}). Use a directory of your own.", name);
            }
            const uint GroupOrOtherWrite = 0x12, Sticky = 0x200; // 0022, 01000
            uint me = UnixNative.EffectiveUserId;
            if (owner != me && owner != 0)
            {
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"The directory of the Unix socket '{path}' belongs to another user (uid {owner}), who could replace the socket. Use a directory of your own.", name);
            }
            if ((mode & GroupOrOtherWrite) != 0 && (mode & Sticky) == 0)
            {
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"The directory of the Unix socket '{path}' can be written by other users (mode {Convert.ToString(mode & 0xFFF, 8)}, no sticky bit), who could replace the socket. " +
                    "Use a directory only you can write to (PsIpc creates a missing one with mode 0700).", name);
            }
        }

        /// <exception cref="IpcException">AddressInUse, AccessDenied, SocketPathInvalid.</exception>
        private static Socket BindUnixExclusive(string path, string name)
        {
            try
            {
                return BindUnixExclusiveOrThrow(path, name);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
            {
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"Cannot create the Unix socket '{path}': permission denied. Use a directory of your own.", name, e);
            }
            catch (SocketException e)
            {
                // bind() refused the path itself: a file system without sockets (/proc, /sys), a read-only one, a
                // part of the path that is not a directory.
                throw new IpcException(IpcErrorKind.SocketPathInvalid,
                    $"Cannot create the Unix socket '{path}': {e.Message} ({e.SocketErrorCode}). Choose a -Path in a directory of your own on a local file system.", name, e);
            }
        }

        private static Socket BindUnixExclusiveOrThrow(string path, string name) =>
            UnixSocketFiles.BindExclusive(path, (failure, inner) =>
            {
                switch (failure)
                {
                    case UnixBindFailure.Served:
                        return new IpcException(IpcErrorKind.AddressInUse,
                            $"The Unix socket '{path}' is already served by another process. Choose another -Path.", name, inner);
                    case UnixBindFailure.NotASocket:
                        return new IpcException(IpcErrorKind.AddressInUse,
                            $"'{path}' exists and is not a socket; PsIpc leaves it alone. Choose another -Path.", name, inner);
                    default:
                        return new IpcException(IpcErrorKind.AddressInUse,
                            $"The Unix socket '{path}' is stale but cannot be replaced ({inner?.Message}).", name, inner);
                }
            });

        public static void TryDelete(string path) => UnixSocketFiles.TryDelete(path);

        /// <summary>Connects to a TCP server, trying each address of the host, until the deadline.</summary>
        /// <exception cref="IpcException">ConnectionRefused, ConnectTimeout, HostNotFound, ConnectFailed.</exception>
        public static Socket ConnectTcp(string host, int port, string name, Deadline deadline, CancellationToken cancellationToken)
        {
            IPAddress[] addresses;
            if (IPAddress.TryParse(host, out IPAddress literal))
            {
                addresses = new[] { literal };
            }
            else if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            {
                addresses = new[] { IPAddress.Loopback, IPAddress.IPv6Loopback };
            }
            else
            {
                try
                {
                    addresses = Dns.GetHostAddresses(host);
                }
                catch (SocketException e)
                {
                    throw new IpcException(IpcErrorKind.HostNotFound, $"The host '{host}' was not found: {e.Message}", name, e);
                }
                // IPv4 first: a server that binds 127.0.0.1 (the default) does not listen on ::1.
                addresses = addresses.OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).ToArray();
            }
            SocketException? last = null;
            foreach (IPAddress address in addresses)
            {
                try
                {
                    Socket socket = ConnectWithin(() => new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true },
                        new IPEndPoint(address, port), name, $"{host}:{port}", deadline, cancellationToken);
                    return socket;
                }
                catch (SocketException e)
                {
                    last = e;
                }
            }
            if (last != null && last.SocketErrorCode == SocketError.ConnectionRefused)
            {
                throw new IpcException(IpcErrorKind.ConnectionRefused,
                    $"Nothing listens on {host} port {port}: the connection was refused.", name, last);
            }
            throw new IpcException(IpcErrorKind.ConnectFailed, $"Cannot connect to {host} port {port}: {last?.Message}", name, last);
        }

        /// <summary>Connects to a Unix socket and checks that its server runs as this user.</summary>
        /// <exception cref="IpcException">ConnectionRefused, SocketPathTooLong, AccessDenied.</exception>
        public static Socket ConnectUnix(string path, string name, Deadline deadline, CancellationToken cancellationToken)
        {
            if (UnixNative.IsWindows)
            {
                // The peer-user check below needs libc; Windows' AF_UNIX sockets are not supported yet.
                throw new PlatformNotSupportedException("Unix domain sockets (-Path) are supported on Linux and macOS only.");
            }
            path = CheckUnixPath(path, name);
            Socket? socket = null;
            try
            {
                socket = ConnectWithin(() => new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified),
                    new UnixEndPoint(path), name, path, deadline, cancellationToken);
                uint peer = UnixNative.GetPeerUserId(socket);
                if (peer != UnixNative.EffectiveUserId)
                {
                    throw new IpcException(IpcErrorKind.AccessDenied,
                        $"The Unix socket '{path}' is served by another user (uid {peer}); PsIpc does not attach to it.", name);
                }
                SocketBuffers.Enlarge(socket); // as a pipe's client does: same kernel object, same buffers
                return socket;
            }
            catch (SocketException e)
            {
                socket?.Dispose();
                if (e.SocketErrorCode == SocketError.AccessDenied)
                {
                    throw new IpcException(IpcErrorKind.AccessDenied, $"Access to the Unix socket '{path}' was denied.", name, e);
                }
                string why = e.SocketErrorCode == SocketError.ConnectionRefused ? "the socket file exists but nobody listens on it" : "no server has created it";
                throw new IpcException(IpcErrorKind.ConnectionRefused, $"Cannot connect to the Unix socket '{path}': {why}.", name, e);
            }
            catch
            {
                socket?.Dispose();
                throw;
            }
        }

        // On Linux, connects with blocking connect() calls, each bounded by SO_SNDTIMEO (which Linux applies to
        // connect), rather than ConnectAsync: one async operation switches a .NET socket on Unix to
        // non-blocking mode for good, and every blocking read and write after it is then emulated through
        // the runtime's epoll thread, a thread hand-off each time a write finds the buffer full or a read
        // finds nothing. The connection's reader and writer threads use blocking calls, like a pipe's socket.
        // A TCP connect still pending after the first slice (a full accept queue, a distant host) goes on
        // asynchronously; other systems always connect asynchronously.
        private static Socket ConnectWithin(Func<Socket> create, EndPoint endPoint, string name, string what, Deadline deadline, CancellationToken cancellationToken)
        {
            if (UnixNative.IsLinux)
            {
                Socket blocking = create();
                try
                {
                    if (TryConnectBlocking(blocking, endPoint, name, what, deadline, cancellationToken)) return blocking;
                }
                catch
                {
                    blocking.Dispose();
                    throw;
                }
                blocking.Dispose(); // .NET does not reuse a socket whose connect timed out
            }
            Socket socket = create();
            try
            {
                ConnectAsyncWithin(socket, endPoint, name, what, deadline, cancellationToken);
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        private const int ConnectSliceMs = 100;

        // True when connected; false when a TCP connect is still pending after one slice (go asynchronous).
        private static bool TryConnectBlocking(Socket socket, EndPoint endPoint, string name, string what, Deadline deadline, CancellationToken cancellationToken)
        {
            bool unix = endPoint.AddressFamily == AddressFamily.Unix;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int left = deadline.RemainingMilliseconds;
                if (left == 0) throw new IpcException(IpcErrorKind.ConnectTimeout, $"Timed out connecting to {what}.", name);
                socket.SendTimeout = left < 0 || left > ConnectSliceMs ? ConnectSliceMs : left;
                try
                {
                    socket.Connect(endPoint);
                    socket.SendTimeout = 0; // writes block without a limit again (deadlines are the connection's business)
                    return true;
                }
                catch (SocketException e) when (unix && e.SocketErrorCode == SocketError.WouldBlock)
                {
                    // The server's listen backlog stayed full for the whole slice: try again until the deadline.
                }
                catch (SocketException e) when (!unix && (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.InProgress
                    || e.SocketErrorCode == SocketError.WouldBlock || e.SocketErrorCode == SocketError.AlreadyInProgress))
                {
                    return false;
                }
            }
        }

        private static void ConnectAsyncWithin(Socket socket, EndPoint endPoint, string name, string what, Deadline deadline, CancellationToken cancellationToken)
        {
            Task connect = socket.ConnectAsync(endPoint);
            bool done;
            try
            {
                done = connect.Wait(deadline.RemainingMilliseconds, cancellationToken);
            }
            catch (AggregateException e) when (e.InnerException is SocketException se)
            {
                throw se;
            }
            if (!done)
            {
                connect.ContinueWith(t => _ = t.Exception, TaskScheduler.Default); // observed: the socket is disposed below
                throw new IpcException(IpcErrorKind.ConnectTimeout, $"Timed out connecting to {what}.", name);
            }
        }
    }
}
