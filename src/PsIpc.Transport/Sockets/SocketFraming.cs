namespace PsIpc.Transport.Sockets
{
    /// <summary>How messages are cut out of a socket's byte stream.</summary>
    public enum SocketFraming
    {
        /// <summary>The PsIpc protocol (docs/protocol.md): Hello, then length-prefixed typed frames.</summary>
        LengthPrefixed,

        /// <summary>Newline-delimited UTF-8 text: each line (without its "\n" or "\r\n") is one Text message.</summary>
        Line,

        /// <summary>Whatever one read returns is one Bytes message; what is sent is written as it is.</summary>
        Raw,
    }

    /// <summary>The kind of socket a server listens on or a client connects to.</summary>
    public enum SocketTransport
    {
        Tcp,
        Unix,
        Udp,
    }
}
