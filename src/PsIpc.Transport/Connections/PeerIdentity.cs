namespace PsIpc.Transport.Connections
{
    /// <summary>How the other end of a connection proved who it is.</summary>
    public enum PeerAuthentication
    {
        /// <summary>Nothing is known: anyone who can reach the address.</summary>
        None,

        /// <summary>The system says it runs as this user (SO_PEERCRED on a Unix socket or pipe; a current-user-only Windows pipe).</summary>
        SameUser,

        /// <summary>It proved the shared secret (-Secret): docs/protocol.md, section 11.</summary>
        SharedSecret,
    }

    /// <summary>
    /// What a stream transport knows of the peer it connected to or accepted: its address, its user where the
    /// system tells, and what the stream stages (TLS, the secret exchange) proved. The channel's
    /// IsAuthenticated and AcceptsCliXml are read from here.
    /// </summary>
    public sealed class PeerIdentity
    {
        public PeerIdentity(string remoteAddress, uint? userId, bool isLoopback, PeerAuthentication authentication)
        {
            RemoteAddress = remoteAddress;
            UserId = userId;
            IsLoopback = isLoopback;
            Authentication = authentication;
        }

        /// <summary>ip:port for TCP, the path for a Unix socket or pipe.</summary>
        public string RemoteAddress { get; }

        /// <summary>The peer's uid where the system tells (Unix sockets and pipes); null otherwise.</summary>
        public uint? UserId { get; }

        /// <summary>True when the peer is on this machine (a Unix socket, a pipe, a TCP loopback address).</summary>
        public bool IsLoopback { get; }

        public PeerAuthentication Authentication { get; internal set; }

        /// <summary>True when a TLS stage protects the bytes.</summary>
        public bool IsEncrypted { get; internal set; }

        /// <summary>
        /// True when the peer is known: it runs as this user, or it proved the shared secret over TLS or from this
        /// machine (without TLS, the bytes after the exchange could come from someone on the network path).
        /// </summary>
        public bool IsAuthenticated =>
            Authentication == PeerAuthentication.SameUser ||
            Authentication == PeerAuthentication.SharedSecret && (IsEncrypted || IsLoopback);
    }
}
