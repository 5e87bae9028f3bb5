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

        private static Socket BindExclusive(PipeName name) =>
            UnixSocketFiles.BindExclusive(name.Path, (failure, inner) =>
            {
                switch (failure)
                {
                    case UnixBindFailure.Served:
                        return new IpcException(IpcErrorKind.PipeNameInUse,
                            $"The pipe name '{name.Name}' is already served by another process ({name.Path}). Choose another name, or omit -Name for a unique one.", name.Name, inner);
                    case UnixBindFailure.NotASocket:
                        return new IpcException(IpcErrorKind.PipeNameInUse,
                            $"The pipe name '{name.Name}' is taken: '{name.Path}' exists and is not a socket; PsIpc leaves it alone.", name.Name, inner);
                    default:
                        return new IpcException(IpcErrorKind.PipeNameInUse,
                            $"The pipe name '{name.Name}' is taken: '{name.Path}' exists and cannot be replaced ({inner?.Message}).", name.Name, inner);
                }
            });

        private static void TryDelete(string path) => UnixSocketFiles.TryDelete(path);
    }
}
