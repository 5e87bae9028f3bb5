using PsIpc.Transport.Channels;

namespace PsIpc.Transport.Connections
{
    /// <summary>What a connection tells the channel that owns it: a server (for all its peers) or a client.</summary>
    internal interface IConnectionOwner
    {
        /// <summary>Where received messages go (a server merges all its connections here).</summary>
        BoundedQueue<IpcMessage> Inbound { get; }

        /// <summary>
        /// The connection is open (the PsIpc protocol: the peer's hello arrived; Line/Raw: at once). Return an error
        /// to refuse it: it is sent to the peer where the framing can say why, then the connection closes.
        /// </summary>
        IpcException? OnOpened(MessageConnection connection);

        /// <summary>The connection ended: goodbye, end of stream, fault or local close. Called once, after its last message was queued.</summary>
        void OnEnded(MessageConnection connection, IpcException? fault);

        /// <summary>
        /// When a Line/Raw peer shuts down its sending side: keep the connection writable and queue an end-of-input
        /// marker after its last message (a server whose handler answers and then closes). False: the connection
        /// ends at the peer's end of stream.
        /// </summary>
        bool KeepsHalfClosed { get; }
    }
}
