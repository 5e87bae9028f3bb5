using System.Threading;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// One connection to one peer, whatever carries it (a pipe's stream, a TCP or Unix socket, any framing):
    /// what the peer and client channels need of it. <see cref="StreamConnection"/> is the PsIpc protocol over
    /// a stream; the socket connections add what sockets have (<see cref="Sockets.ISocketConnection"/>).
    /// </summary>
    internal interface IConnection
    {
        int Id { get; }

        bool IsEnded { get; }

        /// <summary>Why the connection ended, if it failed; null while it works or after a clean end.</summary>
        IpcException Fault { get; }

        /// <summary>The process id from the peer's Hello (0 without one).</summary>
        int PeerProcessId { get; }

        void Enqueue(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken);

        void Flush(Deadline deadline, CancellationToken cancellationToken);

        /// <summary>Writes what is queued, says goodbye where the framing has a way to, closes.</summary>
        void Close(Deadline deadline);

        void Abort(IpcException reason);
    }
}
