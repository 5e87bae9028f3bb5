using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;

namespace PsIpc.Transport.Sockets
{
    /// <summary>What a socket connection tells the channel that owns it (a server or a client).</summary>
    internal interface ISocketConnectionOwner
    {
        /// <summary>Where received messages go (a server merges all its connections here).</summary>
        BoundedQueue<IpcMessage> Inbound { get; }

        /// <summary>The connection is open (LengthPrefixed: the peer's Hello arrived). Return an error to refuse it.</summary>
        IpcException OnOpened(ISocketConnection connection);

        /// <summary>The connection ended; called once, after its last message was queued.</summary>
        void OnEnded(ISocketConnection connection, IpcException fault);

        /// <summary>
        /// When a Line/Raw peer shuts down its sending side, whether to keep the connection open for replies
        /// and queue an end-of-input marker after its last message (a server whose handler answers and then
        /// closes). False: the connection ends at the peer's end of stream.
        /// </summary>
        bool KeepsHalfClosed { get; }
    }

    /// <summary>One connected socket, whatever its framing: what servers, clients and peers need of it.</summary>
    internal interface ISocketConnection : IConnection
    {
        Socket Socket { get; }
        string RemoteAddress { get; }

        /// <summary>The largest message the peer accepts (from its Hello; int.MaxValue without one).</summary>
        int PeerMaxMessageSize { get; }

        /// <summary>The channel that appears as the sender of this connection's messages.</summary>
        IpcChannel SenderView { get; set; }

        void Start();

        /// <summary>Waits until the connection is open. False on deadline; throws the fault if it ended.</summary>
        bool WaitForOpen(Deadline deadline, CancellationToken cancellationToken);

        /// <summary>When a whole message last went either way (Stopwatch ticks; the connection's start before any).</summary>
        long LastActivity { get; }

        /// <summary>Ends the connection for <paramref name="reason"/>, telling the peer first if that cannot block.</summary>
        void Expire(IpcException reason);
    }

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
