using System;
using System.IO;
using System.Net.Sockets;
using System.Security.Authentication;
using PsIpc.Transport;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace PsIpc.Amqp
{
    /// <summary>RabbitMQ.Client's exceptions and AMQP reply codes, as the error kinds users see.</summary>
    internal static class AmqpErrors
    {
        // AMQP 0-9-1 reply codes (channel.close / connection.close).
        public const ushort AccessRefused = 403;
        public const ushort NotFound = 404;
        public const ushort ResourceLocked = 405;
        public const ushort PreconditionFailed = 406;
        public const ushort NotAllowed = 530;

        /// <summary>A channel error: the channel is gone for good (a lost connection is recovered instead).</summary>
        public static bool IsChannelError(ushort replyCode) =>
            replyCode == 311 || replyCode == 313 || replyCode == AccessRefused || replyCode == NotFound ||
            replyCode == ResourceLocked || replyCode == PreconditionFailed;

        /// <summary>The broker closed the channel (or connection): what it said, as an error kind.</summary>
        public static IpcException FromShutdown(ShutdownEventArgs reason, string what, string target, bool isExchange = false)
        {
            string said = $"{reason.ReplyCode} {reason.ReplyText}";
            switch (reason.ReplyCode)
            {
                case NotFound:
                    return isExchange
                        ? new IpcException(IpcErrorKind.ExchangeNotFound, $"{what}: the exchange does not exist ({said}).", target)
                        : new IpcException(IpcErrorKind.QueueNotFound, $"{what}: the queue does not exist ({said}).", target);
                case AccessRefused:
                case NotAllowed:
                    return new IpcException(IpcErrorKind.AccessDenied, $"{what}: the broker refused it ({said}).", target);
                case ResourceLocked:
                    return new IpcException(IpcErrorKind.QueueInUse, $"{what}: another connection holds the queue exclusively ({said}).", target);
                case PreconditionFailed:
                    return new IpcException(IpcErrorKind.QueueSettingsConflict,
                        $"{what}: it exists with other settings ({said}). Connect with the settings it was declared with, or with -MustExist.", target);
                default:
                    return new IpcException(IpcErrorKind.ChannelClosed, $"{what}: the broker closed the channel ({said}).", target);
            }
        }

        /// <summary>A failed connection attempt. <paramref name="refusedCertificate"/>: why our TLS check refused the server, if it did.</summary>
        public static IpcException FromConnectFailure(Exception e, string endpoint, string target, string? refusedCertificate)
        {
            if (refusedCertificate != null)
            {
                return new IpcException(IpcErrorKind.AuthenticationFailed,
                    $"The broker at {endpoint} was refused: {refusedCertificate}. To trust a self-signed certificate, pin its thumbprint with -CertificateThumbprint.",
                    target, e);
            }
            for (Exception? inner = e; inner != null; inner = inner.InnerException)
            {
                switch (inner)
                {
                    case AuthenticationFailureException _:
                    case PossibleAuthenticationFailureException _:
                        return new IpcException(IpcErrorKind.AuthenticationFailed,
                            $"The broker at {endpoint} refused the user name or password ({inner.Message}).", target, e);
                    case AuthenticationException _:
                        return new IpcException(IpcErrorKind.AuthenticationFailed,
                            $"The TLS handshake with the broker at {endpoint} failed ({Innermost(inner)}).", target, e);
                    case OperationInterruptedException oie when oie.ShutdownReason != null:
                        if (oie.ShutdownReason.ReplyCode == AccessRefused || oie.ShutdownReason.ReplyCode == NotAllowed)
                        {
                            return new IpcException(IpcErrorKind.AccessDenied,
                                $"The broker at {endpoint} refused access ({oie.ShutdownReason.ReplyCode} {oie.ShutdownReason.ReplyText}); check the virtual host and the user's permissions.",
                                target, e);
                        }
                        break;
                    case SocketException se when se.SocketErrorCode == SocketError.HostNotFound || se.SocketErrorCode == SocketError.NoData:
                        return new IpcException(IpcErrorKind.HostNotFound, $"The broker's host name in {endpoint} does not resolve ({se.Message}).", target, e);
                    case ProtocolVersionMismatchException _:
                        return new IpcException(IpcErrorKind.ProtocolVersionMismatch,
                            $"{endpoint} does not speak AMQP 0-9-1 ({inner.Message}).", target, e);
                }
            }
            return new IpcException(IpcErrorKind.BrokerUnreachable,
                $"No RabbitMQ broker answered at {endpoint} ({Innermost(e)}).", target, e);
        }

        /// <summary>Worth another attempt before the deadline: nobody listening yet, a network error.</summary>
        public static bool IsTransient(IpcException e) => e.Kind == IpcErrorKind.BrokerUnreachable;

        public static string Innermost(Exception e)
        {
            Exception inner = e;
            while (inner.InnerException != null && !(inner is SocketException)) inner = inner.InnerException;
            return inner is SocketException s ? $"{s.SocketErrorCode}: {s.Message}" : inner.Message;
        }

        public static bool IsConnectionLoss(Exception e) =>
            e is AlreadyClosedException || e is OperationInterruptedException || e is IOException || e is SocketException ||
            e is ObjectDisposedException;
    }
}
