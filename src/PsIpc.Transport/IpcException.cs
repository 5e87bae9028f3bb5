using System;

namespace PsIpc.Transport
{
    /// <summary>
    /// What went wrong, as a stable identifier. The module turns it into the error id users see. New kinds go
    /// at the end, so the numbers compiled into other assemblies (a transport of its own) keep their meaning.
    /// </summary>
    public enum IpcErrorKind
    {
        // Timeouts, closed channels and pipes.
        ConnectTimeout,
        ReceiveTimeout,
        SendTimeout,
        FlushTimeout,
        ChannelClosed,
        PeerDisconnected,
        PipeNameInUse,
        InvalidPipeName,
        PipeNameTooLong,
        PipeNotFound,
        PipeBusy,
        // Sockets: addresses, connections, the PsIpc protocol and its limits.
        AddressInUse,
        AuthenticationRequired,
        ConnectionRefused,
        HostNotFound,
        SocketPathTooLong,
        ServerBusy,
        ProtocolError,
        ProtocolVersionMismatch,
        MessageTooLarge,
        AccessDenied,
        ConnectFailed,
        RemoteError,
        // Shared memory segments and queues.
        SharedMemoryNameInUse,
        SharedMemoryNotFound,
        InvalidSharedMemoryName,
        SharedMemoryTooLarge,
        SharedMemoryIsQueue,
        SharedMemoryNotQueue,
        SharedMemoryCorrupt,
        SharedMemoryDamaged,
        SharedMemoryLockTimeout,
        // Socket authentication (the shared secret, TLS) and the server's time limits.
        AuthenticationFailed,
        HandshakeTimeout,
        IdleTimeout,
        // The channel contract: an operation the channel cannot do (receiving from a peer view, sending to a segment).
        OperationNotSupported,
        // A Unix socket path that cannot be bound: its directory cannot be created, or the file system refuses a socket there.
        SocketPathInvalid,
        // Shared memory: a file shrunk under its mapping, a segment directory squatted or misconfigured.
        SharedMemoryTruncated,
        SharedMemoryDirectoryNotOwned,
        InvalidSharedMemoryDirectory,
        // RabbitMQ queues: the broker, its queues and exchanges, publisher confirms.
        BrokerUnreachable,
        QueueNotFound,
        ExchangeNotFound,
        QueueSettingsConflict,
        QueueInUse,
        PublishNotConfirmed,
        // Shared memory: a thread that holds a segment's lock (inside an update) asked for it again.
        SharedMemoryLockReentry,
        // Request/reply: the peer's handler failed on this request (its message is the handler's).
        HandlerFailed,
        // Bulk receive: the next message does not fit the caller's buffer (it stays in the channel).
        BufferTooSmall,
    }

    /// <summary>The one exception type the transport core throws for expected failures.</summary>
    public class IpcException : Exception
    {
        public IpcException(IpcErrorKind kind, string message, string? target = null, Exception? inner = null)
            : base(message, inner)
        {
            Kind = kind;
            Target = target;
        }

        public IpcErrorKind Kind { get; }

        /// <summary>The channel or pipe name the error is about.</summary>
        public string? Target { get; }

        public bool IsTimeout =>
            Kind == IpcErrorKind.ConnectTimeout || Kind == IpcErrorKind.ReceiveTimeout ||
            Kind == IpcErrorKind.SendTimeout || Kind == IpcErrorKind.FlushTimeout ||
            Kind == IpcErrorKind.SharedMemoryLockTimeout || Kind == IpcErrorKind.HandshakeTimeout ||
            Kind == IpcErrorKind.IdleTimeout;
    }
}
