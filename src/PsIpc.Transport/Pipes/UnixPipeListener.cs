using System;
using System.IO;
using System.Net.Sockets;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Pipes
{
    /// <summary>
    /// A pipe server on Unix: a Unix domain socket at the pipe's path, mode 0600, accepting only peers of the
    /// same user. Never takes over a name that a live server holds (unlike .NET's NamedPipeServerStream,
    /// which deletes the other server's socket file); a stale file nobody listens on is replaced.
    /// </summary>
    internal sealed class UnixPipeListener : IPipeListener
    {
        private readonly PipeName _name;
        private readonly Socket _socket;
        private readonly uint _uid;
        private int _disposed;

        public UnixPipeListener(PipeName name)
        {
            _name = name;
            _uid = UnixNative.EffectiveUserId;
            _socket = BindExclusive(name);
            try
            {
                UnixNative.SetMode(name.Path, Convert.ToUInt32("600", 8));
                _socket.Listen(128);
            }
            catch
            {
                _socket.Dispose();
                TryDelete(name.Path);
                throw;
            }
        }

        public PipeStreamPair Accept()
        {
            Socket client = _socket.Accept();
            try
            {
                uint peer = UnixNative.GetPeerUserId(client);
                if (peer != _uid)
                {
                    throw new IpcException(IpcErrorKind.AccessDenied,
                        $"A process of another user (uid {peer}) tried to connect to the pipe '{_name.Name}'; it was refused.", _name.Name);
                }
                SocketBuffers.Enlarge(client);
                return new PipeStreamPair(new NetworkStream(client, ownsSocket: true), client);
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            if (System.Threading.Interlocked.Exchange(ref _disposed, 1) != 0) return;
            _socket.Dispose();
            TryDelete(_name.Path);
        }

        private static Socket BindExclusive(PipeName name)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                try
                {
                    socket.Bind(new UnixEndPoint(name.Path));
                    return socket;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
                {
                    if (IsServed(name.Path))
                    {
                        throw new IpcException(IpcErrorKind.PipeNameInUse,
                            $"The pipe name '{name.Name}' is already served by another process ({name.Path}). Choose another name, or omit -Name for a unique one.", name.Name, e);
                    }
                }
                if (!UnixNative.IsSocketFile(name.Path))
                {
                    throw new IpcException(IpcErrorKind.PipeNameInUse,
                        $"The pipe name '{name.Name}' is taken: '{name.Path}' exists and is not a socket; PsIpc leaves it alone.", name.Name);
                }
                // A stale socket file: its server is gone. In a sticky temp directory only its owner can remove it.
                try
                {
                    File.Delete(name.Path);
                }
                catch (Exception e) when (e is UnauthorizedAccessException || e is IOException)
                {
                    throw new IpcException(IpcErrorKind.PipeNameInUse,
                        $"The pipe name '{name.Name}' is taken: '{name.Path}' exists and cannot be replaced ({e.Message}).", name.Name, e);
                }
                try
                {
                    socket.Bind(new UnixEndPoint(name.Path));
                    return socket;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
                {
                    throw new IpcException(IpcErrorKind.PipeNameInUse,
                        $"The pipe name '{name.Name}' was taken by another process just now.", name.Name, e);
                }
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        private static bool IsServed(string path)
        {
            using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                try
                {
                    probe.Connect(new UnixEndPoint(path));
                    return true;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused || e.SocketErrorCode == SocketError.AddressNotAvailable)
                {
                    return false;
                }
                catch (SocketException)
                {
                    return true; // e.g. permission denied: somebody else's, and not ours to replace
                }
            }
        }

        private static void TryDelete(string path)
        {
            try { File.Delete(path); } catch (Exception e) when (e is UnauthorizedAccessException || e is IOException) { }
        }
    }
}
