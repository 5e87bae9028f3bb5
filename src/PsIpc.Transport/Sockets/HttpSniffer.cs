using System;
using System.Text;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// Recognizes the start of an HTTP request or response. A browser can be made to send HTTP to any
    /// localhost port (a web page posting to 127.0.0.1:port); a PsIpc socket server closes such a
    /// connection before a handler or a Receive ever sees its bytes.
    /// </summary>
    internal static class HttpSniffer
    {
        public const int PrefixLength = 4;

        private static readonly byte[][] Prefixes =
        {
            Encoding.ASCII.GetBytes("GET "), Encoding.ASCII.GetBytes("POST"), Encoding.ASCII.GetBytes("HTTP"),
            Encoding.ASCII.GetBytes("PUT "), Encoding.ASCII.GetBytes("HEAD"), Encoding.ASCII.GetBytes("OPTI"),
            Encoding.ASCII.GetBytes("DELE"), Encoding.ASCII.GetBytes("PATC"), Encoding.ASCII.GetBytes("CONN"),
        };

        /// <summary>True when the first <see cref="PrefixLength"/> bytes are an HTTP method or "HTTP".</summary>
        public static bool LooksLikeHttp(byte[] buffer, int offset, int count)
        {
            if (count < PrefixLength) return false;
            foreach (byte[] prefix in Prefixes)
            {
                if (Matches(buffer, offset, prefix, PrefixLength)) return true;
            }
            return false;
        }

        /// <summary>True while the bytes so far (fewer than four) could still become an HTTP prefix.</summary>
        public static bool CouldBecomeHttp(byte[] buffer, int offset, int count)
        {
            if (count >= PrefixLength) return false;
            foreach (byte[] prefix in Prefixes)
            {
                if (Matches(buffer, offset, prefix, count)) return true;
            }
            return false;
        }

        private static bool Matches(byte[] buffer, int offset, byte[] prefix, int length)
        {
            for (int i = 0; i < length; i++)
            {
                if (buffer[offset + i] != prefix[i]) return false;
            }
            return true;
        }

        public static IpcException Refusal(string channelName) =>
            new IpcException(IpcErrorKind.ProtocolError,
                $"A client of '{channelName}' sent what looks like HTTP; the connection was closed (PsIpc sockets do not speak HTTP).", channelName);
    }
}
