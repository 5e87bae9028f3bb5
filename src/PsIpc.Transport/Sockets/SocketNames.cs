using System.Net.Sockets;

namespace PsIpc.Transport.Sockets
{
    /// <summary>Names a connected socket's peer for error messages and the peer's Address.</summary>
    internal static class SocketNames
    {
        /// <summary>True when the other end is on this machine: a Unix socket, or a TCP loopback address.</summary>
        public static bool IsLoopback(Socket socket)
        {
            try
            {
                if (socket.AddressFamily == AddressFamily.Unix) return true;
                return socket.RemoteEndPoint is System.Net.IPEndPoint remote && System.Net.IPAddress.IsLoopback(remote.Address);
            }
            catch (SocketException)
            {
                return false;
            }
            catch (System.ObjectDisposedException)
            {
                return false;
            }
        }

        public static string RemoteOf(Socket socket)
        {
            try
            {
                return socket.RemoteEndPoint?.ToString() ?? "local";
            }
            catch (SocketException)
            {
                return "unknown";
            }
            catch (System.ObjectDisposedException)
            {
                return "closed";
            }
        }
    }
}
