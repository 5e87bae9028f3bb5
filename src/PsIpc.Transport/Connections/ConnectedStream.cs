using System.IO;
using System.Net.Sockets;
using PsIpc.Transport.Sockets;

namespace PsIpc.Transport.Connections
{
    /// <summary>
    /// What a stream transport hands to a message connection: the bytes (after any TLS or secret stage), the
    /// socket under them where there is one, and who the peer is. Transports only connect or listen; framing,
    /// loops and lifecycle belong to <see cref="MessageConnection"/>.
    /// </summary>
    internal sealed class ConnectedStream
    {
        public ConnectedStream(Stream stream, Socket? socket, PeerIdentity identity)
        {
            Stream = stream;
            Socket = socket;
            Identity = identity;
        }

        public Stream Stream { get; }

        /// <summary>The socket under the stream (Unix pipes, sockets); null for a Windows pipe.</summary>
        public Socket? Socket { get; }

        public PeerIdentity Identity { get; }

        /// <summary>
        /// Whether a small frame may be written straight to the socket, bypassing the stream: false when a stage
        /// transforms the bytes (TLS). The socket is then used only to see whether it can take a write.
        /// </summary>
        public bool DirectSocketWrites => Socket != null && !(Stream is System.Net.Security.SslStream);

        /// <summary>Set on a server's plain socket: tells at the end whether the client spoke HTTP.</summary>
        public HttpSniffStream? Sniff { get; set; }
    }
}
