using System;
using System.Text;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// The payload of an Error frame: one code byte, then a UTF-8 message. The sender closes the connection
    /// after it. Codes: 0 other, 1 server full, 2 protocol error, 3 message too large, 4 version mismatch,
    /// 5 access denied, 6-9 (docs/protocol.md 5), 10 handler failed (only inside a Reply frame: the connection stays open).
    /// </summary>
    internal static class ErrorFrame
    {
        public static byte[] Encode(IpcErrorKind kind, string message)
        {
            byte[] text = Encoding.UTF8.GetBytes(message ?? string.Empty);
            var payload = new byte[1 + text.Length];
            payload[0] = CodeOf(kind);
            Buffer.BlockCopy(text, 0, payload, 1, text.Length);
            return payload;
        }

        public static IpcException Decode(byte[] payload, string target)
        {
            if (payload.Length == 0) return new IpcException(IpcErrorKind.RemoteError, "The peer reported an error and closed the connection.", target);
            string text = Encoding.UTF8.GetString(payload, 1, payload.Length - 1);
            // Code 10 (handler failed) answers one request inside a Reply and leaves the connection open: an Error
            // frame that carries it is a peer's mistake (or a hostile one), reported as any unknown code is.
            IpcErrorKind kind = payload[0] == CodeOf(IpcErrorKind.HandlerFailed) ? IpcErrorKind.RemoteError : KindOf(payload[0]);
            return new IpcException(kind, "The peer closed the connection: " + text, target);
        }

        /// <summary>An error that answers one request (a Reply frame's error): the connection stays open.</summary>
        public static IpcException DecodeReplyError(byte[] payload, int offset, string target)
        {
            if (payload.Length <= offset) return new IpcException(IpcErrorKind.RemoteError, "The peer could not answer the request.", target);
            string text = Encoding.UTF8.GetString(payload, offset + 1, payload.Length - offset - 1);
            return new IpcException(KindOf(payload[offset]), text, target);
        }

        private static byte CodeOf(IpcErrorKind kind)
        {
            switch (kind)
            {
                case IpcErrorKind.PipeBusy: return 1;
                case IpcErrorKind.ServerBusy: return 1;
                case IpcErrorKind.ProtocolError: return 2;
                case IpcErrorKind.MessageTooLarge: return 3;
                case IpcErrorKind.ProtocolVersionMismatch: return 4;
                case IpcErrorKind.AccessDenied: return 5;
                case IpcErrorKind.AuthenticationRequired: return 6;
                case IpcErrorKind.AuthenticationFailed: return 7;
                case IpcErrorKind.HandshakeTimeout: return 8;
                case IpcErrorKind.IdleTimeout: return 9;
                case IpcErrorKind.HandlerFailed: return 10;
                default: return 0;
            }
        }

        private static IpcErrorKind KindOf(byte code)
        {
            switch (code)
            {
                case 1: return IpcErrorKind.PipeBusy;
                case 2: return IpcErrorKind.ProtocolError;
                case 3: return IpcErrorKind.MessageTooLarge;
                case 4: return IpcErrorKind.ProtocolVersionMismatch;
                case 5: return IpcErrorKind.AccessDenied;
                case 6: return IpcErrorKind.AuthenticationRequired;
                case 7: return IpcErrorKind.AuthenticationFailed;
                case 8: return IpcErrorKind.HandshakeTimeout;
                case 9: return IpcErrorKind.IdleTimeout;
                case 10: return IpcErrorKind.HandlerFailed;
                default: return IpcErrorKind.RemoteError;
            }
        }
    }
}
