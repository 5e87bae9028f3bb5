using System.Management.Automation;
using PsIpc.Transport;

namespace PsIpc.Queue
{
    /// <summary>
    /// Transport failures as error records, like the module's ErrorMapping (which this assembly cannot see):
    /// the error id is the failure kind's name, the target the channel name.
    /// </summary>
    internal static class QueueErrors
    {
        public static ErrorRecord ToErrorRecord(IpcException e) =>
            new ErrorRecord(e, e.Kind.ToString(), CategoryOf(e), e.Target);

        private static ErrorCategory CategoryOf(IpcException e)
        {
            if (e.IsTimeout) return ErrorCategory.OperationTimeout;
            switch (e.Kind)
            {
                case IpcErrorKind.BrokerUnreachable:
                case IpcErrorKind.ConnectFailed:
                case IpcErrorKind.ConnectionRefused:
                case IpcErrorKind.HostNotFound:
                    return ErrorCategory.ConnectionError;
                case IpcErrorKind.AuthenticationFailed:
                    return ErrorCategory.AuthenticationError;
                case IpcErrorKind.AccessDenied:
                    return ErrorCategory.PermissionDenied;
                case IpcErrorKind.QueueNotFound:
                case IpcErrorKind.ExchangeNotFound:
                    return ErrorCategory.ObjectNotFound;
                case IpcErrorKind.QueueInUse:
                    return ErrorCategory.ResourceBusy;
                case IpcErrorKind.QueueSettingsConflict:
                    return ErrorCategory.InvalidOperation;
                case IpcErrorKind.ProtocolVersionMismatch:
                    return ErrorCategory.ProtocolError;
                case IpcErrorKind.ChannelClosed:
                    return ErrorCategory.ResourceUnavailable;
                default:
                    return ErrorCategory.NotSpecified;
            }
        }
    }
}
