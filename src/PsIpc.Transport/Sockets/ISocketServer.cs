using System;
using System.Collections.Generic;
using PsIpc.Transport.Channels;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// What every socket server (TCP, Unix, UDP) offers the module: what Get-/Stop-IpcSocketServer list and
    /// stop, and what a script-block handler needs. Every implementation is an <see cref="IpcChannel"/> whose
    /// Receive gives the messages of all its peers, each message's Sender being the peer to reply to.
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

        /// <summary>The module's handler of this server's messages (-ScriptBlock); null otherwise.</summary>
        object Handler { get; set; }

        long HandlerErrors { get; }
        IReadOnlyList<Exception> RecentHandlerErrors { get; }
        void RecordHandlerError(Exception error);

        /// <summary>Raised when Close starts, before anything is released (a handler stops here).</summary>
        event EventHandler<Deadline> Closing;
    }
}
