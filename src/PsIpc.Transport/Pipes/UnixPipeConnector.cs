using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Pipes
{
    /// <summary>
    /// The client end on Unix: connects to the pipe's socket, retrying until the deadline while the server
    /// is not up yet, and attaches only to a server running as the same user.
    /// </summary>
    internal static class UnixPipeConnector
    {
        public static PipeStreamPair Connect(PipeName name, Deadline deadline, CancellationToken cancellationToken)
        {
            int backoffMs = 2;
            SocketError lastError = SocketError.Success;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    socket.Connect(new UnixEndPoint(name.Path));
                    uint peer = UnixNative.GetPeerUserId(socket);
                    if (peer != UnixNative.EffectiveUserId)
                    {
                        throw new IpcException(IpcErrorKind.AccessDenied,
                            $"The pipe '{name.Name}' is served by another user (uid {peer}); PsIpc does not attach to it.", name.Name);
                    }
                    SocketBuffers.Enlarge(socket);
                    return new PipeStreamPair(new NetworkStream(socket, ownsSocket: true), socket);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
                {
                    socket.Dispose();
                    throw new IpcException(IpcErrorKind.AccessDenied,
                        $"Access to the pipe '{name.Name}' ({name.Path}) was denied: it belongs to another user.", name.Name, e);
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    lastError = e.SocketErrorCode;
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }

                int left = deadline.RemainingMilliseconds;
                if (left == 0)
                {
                    string why = lastError == SocketError.ConnectionRefused
                        ? "its socket file exists but nobody listens on it"
                        : "no server has created it";
                    throw new IpcException(IpcErrorKind.ConnectTimeout,
                        $"Timed out connecting to the pipe '{name.Name}': {why} ({name.Path}).", name.Name);
                }
                int wait = left < 0 ? backoffMs : System.Math.Min(backoffMs, left);
                cancellationToken.WaitHandle.WaitOne(wait);
                backoffMs = System.Math.Min(backoffMs * 2, 50);
            }
        }
    }
}
