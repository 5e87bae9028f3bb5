using System.Collections.Generic;
using System.Threading;

namespace PsIpc.Transport.Channels
{
    /// <summary>What a server does when it sends to all its connections (pipe and socket servers alike).</summary>
    internal static class Broadcast
    {
        /// <summary>
        /// Queues the frame on every connection. One that has just left (and, with
        /// <paramref name="skipSmaller"/>, one that accepts smaller messages) is skipped, unless every one
        /// fails: then that error is thrown. True when at least one took it.
        /// </summary>
        public static bool Send<T>(List<T> targets, OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken, bool skipSmaller)
            where T : IConnection
        {
            IpcException failure = null;
            int delivered = 0;
            foreach (T connection in targets)
            {
                try
                {
                    connection.Enqueue(frame, deadline, cancellationToken);
                    delivered++;
                }
                catch (IpcException e) when ((e.Kind == IpcErrorKind.PeerDisconnected || skipSmaller && e.Kind == IpcErrorKind.MessageTooLarge) && targets.Count > 1)
                {
                    failure = e;
                }
            }
            if (delivered == 0 && failure != null) throw failure;
            return delivered > 0;
        }

        /// <summary>
        /// Waits until every connection wrote what it had queued. One that has left is skipped; with
        /// <paramref name="reportSoleLoss"/>, not when it was the only one (the sender learns its message is lost).
        /// </summary>
        public static void Flush<T>(List<T> targets, Deadline deadline, CancellationToken cancellationToken, bool reportSoleLoss)
            where T : IConnection
        {
            foreach (T connection in targets)
            {
                try
                {
                    connection.Flush(deadline, cancellationToken);
                }
                catch (IpcException e) when (e.Kind == IpcErrorKind.PeerDisconnected && (!reportSoleLoss || targets.Count > 1)) { }
            }
        }
    }
}
