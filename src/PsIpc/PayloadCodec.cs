using System;
using System.Diagnostics.CodeAnalysis;
using System.Management.Automation;
using System.Text;
using PsIpc.Transport;
using PsIpc.Transport.Framing;

namespace PsIpc
{
    /// <summary>How Send-IpcMessage encodes a value. Auto: string as Text, byte[] as Bytes, anything else as CliXml.</summary>
    public enum PayloadFormat
    {
        Auto,
        Text,
        Bytes,
        CliXml,
        Json,
    }

    /// <summary>
    /// Turns PowerShell values into message payloads and back. CliXml gives the fidelity of Start-Job
    /// (Deserialized.* objects with properties, no methods or script properties); JSON is for peers
    /// that are not PowerShell. Must run on the pipeline thread (JSON uses the current runspace).
    /// </summary>
    internal sealed class PayloadCodec : IDisposable
    {
        private static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, false);
        private PowerShell? _json;
        private StringBuilder? _cliXml; // made on the first CliXml value: a command that sends text never needs it
        private readonly Func<System.Management.Automation.Runspaces.Runspace>? _jsonRunspace;

        /// <summary>A codec for the pipeline thread: JSON goes through the runspace running there.</summary>
        public PayloadCodec()
        {
        }

        /// <summary>
        /// A codec for a thread without a running pipeline (a background pump): JSON goes through the runspace
        /// <paramref name="jsonRunspace"/> gives, asked for on the first JSON message and owned by the caller.
        /// </summary>
        public PayloadCodec(Func<System.Management.Automation.Runspaces.Runspace> jsonRunspace)
        {
            _jsonRunspace = jsonRunspace ?? throw new ArgumentNullException(nameof(jsonRunspace));
        }

        /// <summary>The exceptions by which Encode says a value cannot be encoded in the asked format (EncodeFailed).</summary>
        public static bool IsEncodeFailure(Exception e) => e is PSInvalidCastException || e is FormatException || e is InvalidCastException;

        /// <summary>The exceptions by which Decode says a payload is not what its format claims (DecodeFailed).</summary>
        public static bool IsDecodeFailure(Exception e) =>
            e is System.Xml.XmlException || e is FormatException || e is InvalidOperationException || e is RuntimeException;

        [return: NotNullIfNotNull("value")]
        public static object? Unwrap(object? value) => value is PSObject pso && !(pso.BaseObject is PSCustomObject) ? pso.BaseObject : value;

        public byte[] Encode(object? value, PayloadFormat format, int depth, out MessageFormat wireFormat)
        {
            object? baseValue = Unwrap(value);
            if (format == PayloadFormat.Auto)
            {
                if (baseValue is string) format = PayloadFormat.Text;
                else if (baseValue is byte[]) format = PayloadFormat.Bytes;
                else format = PayloadFormat.CliXml;
            }
            switch (format)
            {
                case PayloadFormat.Text:
                    wireFormat = MessageFormat.Text;
                    return Utf8.GetBytes(baseValue as string ?? LanguagePrimitives.ConvertTo<string>(value) ?? string.Empty);
                case PayloadFormat.Bytes:
                    wireFormat = MessageFormat.Bytes;
                    return baseValue as byte[] ?? LanguagePrimitives.ConvertTo<byte[]>(value);
                case PayloadFormat.Json:
                    wireFormat = MessageFormat.Json;
                    return Utf8.GetBytes(ToJson(value, depth));
                default:
                    wireFormat = MessageFormat.CliXml;
                    _cliXml ??= new StringBuilder(512);
                    if (FastCliXml.TryWrite(value, depth, _cliXml)) return Utf8.GetBytes(_cliXml.ToString());
                    return Utf8.GetBytes(PSSerializer.Serialize(value, depth));
            }
        }

        public object? Decode(IpcMessage message)
        {
            switch (message.Format)
            {
                case MessageFormat.Text:
                    return message.GetText();
                case MessageFormat.Bytes:
                    return message.Payload;
                case MessageFormat.Json:
                    return FromJson(message.GetText());
                case MessageFormat.CliXml:
                    if (!AcceptsCliXmlFrom(message.Sender)) throw new InvalidOperationException(CliXmlRefusal(message.Sender));
                    string xml = message.GetText();
                    return FastCliXml.TryRead(xml, out object? record) ? record : PSSerializer.Deserialize(xml);
                default:
                    return message.Payload;
            }
        }

        /// <summary>
        /// CliXml makes the receiver rehydrate types, so it is decoded only from senders whose channel says so
        /// (IpcChannel.AcceptsCliXml: peers known to run as this user, or that proved a secret over a protected
        /// connection). A channel of a transport that cannot tell keeps the contract's default and is refused.
        /// </summary>
        public static bool AcceptsCliXmlFrom(Transport.Channels.IpcChannel? sender) => sender != null && sender.AcceptsCliXml;

        public static string CliXmlRefusal(Transport.Channels.IpcChannel? sender) =>
            $"'{sender?.Name}' sent a CliXml message over {Describe(sender)}; PsIpc does not deserialize CliXml from such a peer. " +
            "Send objects with -Format Json (or text and bytes), or use a Unix socket (-Path).";

        private static string Describe(Transport.Channels.IpcChannel? sender)
        {
            switch (sender?.Kind)
            {
                case Transport.Channels.ChannelKind.Udp: return "UDP, which is unauthenticated";
                case Transport.Channels.ChannelKind.Tcp: return "an unauthenticated TCP connection";
                default: return $"a {sender?.Kind} channel whose peer is not authenticated";
            }
        }

        public void Dispose() => _json?.Dispose();

        private string ToJson(object? value, int depth)
        {
            PowerShell ps = JsonShell();
            ps.AddCommand("ConvertTo-Json").AddParameter("InputObject", value).AddParameter("Depth", depth).AddParameter("Compress");
            var result = ps.Invoke();
            ThrowIfFailed(ps);
            return result.Count == 0 ? "null" : result[0]?.ToString() ?? "null";
        }

        private object? FromJson(string json)
        {
            PowerShell ps = JsonShell();
            ps.AddCommand("ConvertFrom-Json").AddParameter("InputObject", json);
            var result = ps.Invoke();
            ThrowIfFailed(ps);
            if (result.Count == 0) return null;
            if (result.Count == 1) return result[0];
            var items = new object[result.Count];
            for (int i = 0; i < items.Length; i++) items[i] = result[i];
            return items;
        }

        private PowerShell JsonShell()
        {
            if (_json == null)
            {
                if (_jsonRunspace == null) _json = PowerShell.Create(RunspaceMode.CurrentRunspace);
                else
                {
                    _json = PowerShell.Create();
                    _json.Runspace = _jsonRunspace();
                }
            }
            _json.Commands.Clear();
            _json.Streams.Error.Clear();
            return _json;
        }

        private static void ThrowIfFailed(PowerShell ps)
        {
            if (ps.HadErrors && ps.Streams.Error.Count > 0)
            {
                throw new FormatException("JSON conversion failed: " + ps.Streams.Error[0].Exception.Message, ps.Streams.Error[0].Exception);
            }
        }
    }
}
