using System;
using System.Text;
using PsIpc.Transport.Framing;

namespace PsIpc.Amqp
{
    /// <summary>
    /// Payload formats as AMQP content types, so that programs in other languages know what they read:
    /// text/plain; charset=utf-8, application/json, application/octet-stream, and CliXml under a type of
    /// its own that no generic consumer mistakes for XML it understands.
    /// </summary>
    internal static class ContentTypes
    {
        public const string Text = "text/plain; charset=utf-8";
        public const string Json = "application/json";
        public const string Bytes = "application/octet-stream";
        public const string CliXml = "application/vnd.powershell.clixml+xml";

        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        public static string For(MessageFormat format)
        {
            switch (format)
            {
                case MessageFormat.Text: return Text;
                case MessageFormat.Json: return Json;
                case MessageFormat.CliXml: return CliXml;
                default: return Bytes;
            }
        }

        /// <summary>What a content type says, before the body is looked at.</summary>
        public enum MediaKind { None, CliXml, Json, Text, Other }

        /// <summary>The kind of a content type (media type, case-insensitive) and its charset parameter.</summary>
        public static MediaKind Classify(string? contentType, out string? charset)
        {
            charset = null;
            if (string.IsNullOrWhiteSpace(contentType)) return MediaKind.None;
            string mediaType = contentType!.Split(';')[0].Trim().ToLowerInvariant();
            charset = Parameter(contentType, "charset");
            if (mediaType == CliXml || mediaType == "application/clixml" || mediaType == "application/x-powershell-clixml") return MediaKind.CliXml;
            if (mediaType == "application/json" || mediaType.EndsWith("+json", StringComparison.Ordinal) || mediaType == "text/json") return MediaKind.Json;
            if (mediaType.StartsWith("text/", StringComparison.Ordinal)) return MediaKind.Text;
            return MediaKind.Other;
        }

        /// <summary>
        /// The format of a received message from its content type (and encoding). A message without a
        /// content type (what most clients send by default) is text when it is valid UTF-8, bytes otherwise.
        /// Text in another charset is re-encoded as UTF-8 when .NET knows the charset, else kept as bytes.
        /// </summary>
        public static MessageFormat Parse(string? contentType, string? contentEncoding, ref byte[] body)
        {
            MediaKind kind = Classify(contentType, out string? charset);
            return Parse(kind, charset, contentEncoding, ref body);
        }

        /// <summary><see cref="Parse(string, string, ref byte[])"/> with the content type classified already.</summary>
        public static MessageFormat Parse(MediaKind kind, string? charset, string? contentEncoding, ref byte[] body)
        {
            if (!string.IsNullOrEmpty(contentEncoding) && !string.Equals(contentEncoding, "identity", StringComparison.OrdinalIgnoreCase))
            {
                return MessageFormat.Bytes; // gzip and friends: the caller gets what arrived
            }
            switch (kind)
            {
                case MediaKind.None: return IsUtf8(body) ? MessageFormat.Text : MessageFormat.Bytes;
                case MediaKind.CliXml: return MessageFormat.CliXml;
                case MediaKind.Json: return Recode(charset, ref body) ? MessageFormat.Json : MessageFormat.Bytes;
                case MediaKind.Text: return Recode(charset, ref body) ? MessageFormat.Text : MessageFormat.Bytes;
                default: return MessageFormat.Bytes;
            }
        }

        private static bool Recode(string? charset, ref byte[] body)
        {
            if (charset == null) return IsUtf8(body);
            string name = charset.Trim('"').ToLowerInvariant();
            if (name == "utf-8" || name == "utf8" || name == "us-ascii" || name == "ascii") return IsUtf8(body);
            Encoding encoding;
            try
            {
                encoding = Encoding.GetEncoding(name, EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
            }
            catch (ArgumentException)
            {
                return false;
            }
            try
            {
                body = Encoding.UTF8.GetBytes(encoding.GetString(body));
                return true;
            }
            catch (DecoderFallbackException)
            {
                return false;
            }
        }

        private static string? Parameter(string contentType, string name)
        {
            foreach (string part in contentType.Split(';'))
            {
                int eq = part.IndexOf('=');
                if (eq > 0 && string.Equals(part.Substring(0, eq).Trim(), name, StringComparison.OrdinalIgnoreCase))
                {
                    return part.Substring(eq + 1).Trim();
                }
            }
            return null;
        }

        private static bool IsUtf8(byte[] body)
        {
            try
            {
                StrictUtf8.GetCharCount(body);
                return true;
            }
            catch (DecoderFallbackException)
            {
                return false;
            }
        }
    }
}
