using System.Management.Automation;
using PsIpc.Transport;

namespace PsIpc
{
    /// <summary>
    /// The one place transport failures become error records. The error id is the failure kind's name
    /// (stable: tests assert "Kind,PsIpc.Commands.XxxCommand"); the target is the channel or pipe name.
    /// </summary>
    internal static class ErrorMapping
    {
        public static ErrorRecord ToErrorRecord(IpcException exception) =>
            new ErrorRecord(exception, exception.Kind.ToString(), CategoryOf(exception.Kind), exception.Target);

        public static ErrorRecord ToErrorRecord(System.Exception exception, string errorId, ErrorCategory category, object? target) =>
            new ErrorRecord(exception, errorId, category, target);

        private static ErrorCategory CategoryOf(IpcErrorKind kind)
        {
            switch (kind)
            {
                case IpcErrorKind.ConnectTimeout:
                case IpcErrorKind.ReceiveTimeout:
                case IpcErrorKind.SendTimeout:
                case IpcErrorKind.FlushTimeout:
                case IpcErrorKind.SharedMemoryLockTimeout:
                case IpcErrorKind.HandshakeTimeout:
                case IpcErrorKind.IdleTimeout:
                    return ErrorCategory.OperationTimeout;
                case IpcErrorKind.ChannelClosed:
                    return ErrorCategory.ResourceUnavailable;
                case IpcErrorKind.PeerDisconnected:
                case IpcErrorKind.ConnectFailed:
                case IpcErrorKind.RemoteError:
                case IpcErrorKind.ConnectionRefused:
                case IpcErrorKind.HostNotFound:
                case IpcErrorKind.BrokerUnreachable:
                    return ErrorCategory.ConnectionError;
                case IpcErrorKind.PipeNameInUse:
                case IpcErrorKind.AddressInUse:
                case IpcErrorKind.SharedMemoryNameInUse:
                    return ErrorCategory.ResourceExists;
                case IpcErrorKind.InvalidPipeName:
                case IpcErrorKind.PipeNameTooLong:
                case IpcErrorKind.SocketPathTooLong:
                case IpcErrorKind.SocketPathInvalid:
                case IpcErrorKind.InvalidSharedMemoryName:
                case IpcErrorKind.InvalidSharedMemoryDirectory:
                    return ErrorCategory.InvalidArgument;
                case IpcErrorKind.PipeNotFound:
                case IpcErrorKind.SharedMemoryNotFound:
                case IpcErrorKind.QueueNotFound:
                case IpcErrorKind.ExchangeNotFound:
                    return ErrorCategory.ObjectNotFound;
                case IpcErrorKind.PipeBusy:
                case IpcErrorKind.ServerBusy:
                case IpcErrorKind.QueueInUse:
                    return ErrorCategory.ResourceBusy;
                case IpcErrorKind.OperationNotSupported:
                case IpcErrorKind.SharedMemoryIsQueue:
                case IpcErrorKind.SharedMemoryNotQueue:
                case IpcErrorKind.QueueSettingsConflict:
                case IpcErrorKind.SharedMemoryLockReentry:
                    return ErrorCategory.InvalidOperation;
                case IpcErrorKind.SharedMemoryCorrupt:
                case IpcErrorKind.SharedMemoryDamaged:
                case IpcErrorKind.SharedMemoryTruncated:
                    return ErrorCategory.InvalidData;
                case IpcErrorKind.PublishNotConfirmed:
                    return ErrorCategory.WriteError;
                case IpcErrorKind.HandlerFailed:
                    return ErrorCategory.InvalidResult;
                case IpcErrorKind.ProtocolError:
                case IpcErrorKind.ProtocolVersionMismatch:
                    return ErrorCategory.ProtocolError;
                case IpcErrorKind.MessageTooLarge:
                case IpcErrorKind.SharedMemoryTooLarge:
                case IpcErrorKind.BufferTooSmall:
                    return ErrorCategory.LimitsExceeded;
                case IpcErrorKind.AccessDenied:
                case IpcErrorKind.AuthenticationRequired:
                case IpcErrorKind.SharedMemoryDirectoryNotOwned:
                    return ErrorCategory.PermissionDenied;
                case IpcErrorKind.AuthenticationFailed:
                    return ErrorCategory.AuthenticationError;
                default:
                    return ErrorCategory.NotSpecified;
            }
        }
    }
}
