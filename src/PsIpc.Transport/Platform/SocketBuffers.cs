using System.Net.Sockets;

namespace PsIpc.Transport.Platform
{
    /// <summary>
    /// Kernel buffers for a local stream socket. Linux gives a Unix socket about 200 KiB; a 1 MiB message then
    /// crosses in five or more hand-offs between writer and reader, each a context switch. Asking for more
    /// (the kernel caps it at net.core.wmem_max / rmem_max) lets big messages flow in fewer steps; small
    /// messages do not notice.
    /// </summary>
    internal static class SocketBuffers
    {
        public const int PreferredSize = 1024 * 1024;

        public static void Enlarge(Socket socket)
        {
            try
            {
                if (socket.SendBufferSize < PreferredSize) socket.SendBufferSize = PreferredSize;
                if (socket.ReceiveBufferSize < PreferredSize) socket.ReceiveBufferSize = PreferredSize;
            }
            catch (SocketException)
            {
                // A platform that refuses keeps its default: slower for big messages, nothing else.
            }
        }
    }
}
