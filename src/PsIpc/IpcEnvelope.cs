using System;
using System.Management.Automation;
using PsIpc.Transport.Channels;

namespace PsIpc
{
    /// <summary>
    /// A received message with where it came from, as Receive-IpcMessage -Envelope yields it.
    /// In PowerShell, Sender and Channel are the channel objects (code properties in PsIpc.Types.ps1xml, which take
    /// precedence over the .NET properties): Send-IpcMessage $envelope.Sender replies. The .NET properties of the
    /// same names are the channels' names, which is what ConvertTo-Json and other reflection-based writers see, so
    /// an envelope converts to a few lines of JSON instead of two whole channel objects.
    /// </summary>
    public sealed class IpcEnvelope
    {
        private readonly IpcChannel _sender;
        private readonly IpcChannel _channel;

        internal IpcEnvelope(object? body, IpcChannel sender, IpcChannel channel, Transport.IpcMessage message)
        {
            Body = body;
            _sender = sender;
            _channel = channel;
            ReceivedAt = message.ReceivedAt;
            Format = message.Format.ToString();
            Size = message.Size;
        }

        /// <summary>The decoded message.</summary>
        public object? Body { get; }

        /// <summary>The name of the peer that sent it (PowerShell's Sender is the peer's channel object).</summary>
        public string Sender => _sender.Name;

        /// <summary>The process id the sender announced in its handshake.</summary>
        public int SenderProcessId => _sender.PeerProcessId;

        /// <summary>The name of the channel it was received on (PowerShell's Channel is the channel object).</summary>
        public string Channel => _channel.Name;

        public DateTime ReceivedAt { get; }

        /// <summary>Text, Bytes, CliXml or Json.</summary>
        public string Format { get; }

        /// <summary>Payload size in bytes.</summary>
        public int Size { get; }

        /// <summary>The peer that sent it, for C# callers (internal: a public property would be in the JSON).</summary>
        internal IpcChannel SenderChannel => _sender;

        /// <summary>The channel it was received on, for C# callers.</summary>
        internal IpcChannel ReceivedOn => _channel;

        /// <summary>PowerShell's Sender property (PsIpc.Types.ps1xml).</summary>
        public static IpcChannel? GetSender(PSObject envelope) => (envelope?.BaseObject as IpcEnvelope)?._sender;

        /// <summary>PowerShell's Channel property (PsIpc.Types.ps1xml).</summary>
        public static IpcChannel? GetChannel(PSObject envelope) => (envelope?.BaseObject as IpcEnvelope)?._channel;
    }
}
