using PsIpc.Transport.Channels;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// What every socket server (TCP, Unix, UDP) offers the module: what Get-/Stop-IpcSocketServer list and
    /// stop. Every implementation is an <see cref="IpcChannel"/> whose Receive gives the messages of all its
    /// peers, each message's Sender being the peer to reply to.
    /// </summary>
    public interface ISocketServer
    {
        string Name { get; }
        string Address { get; }
        SocketTransport Transport { get; }
        SocketFraming Framing { get; }

        /// <summary>The port listened on (TCP, UDP); 0 for a Unix socket.</summary>
        int Port { get; }

        ChannelOptions Options { get; }
    }
}
