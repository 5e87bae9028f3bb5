using System;
using PsIpc.Transport.Channels;

namespace PsIpc
{
    /// <summary>A received message with where it came from, as Receive-IpcMessage -Envelope yields it.</summary>
    public sealed class IpcEnvelope
    {
        internal IpcEnvelope(object? body, IpcChannel sender, IpcChannel channel, Transport.IpcMessage message)
        {
            Body = body;
            Sender = sender;
            Channel = channel;
            ReceivedAt = message.ReceivedAt;
            Format = message.Format.ToString();
            Size = message.Size;
        }

        /// <summary>The decoded message.</summary>
        public object? Body { get; }

        /// <summary>The peer that sent it: Send-IpcMessage $envelope.Sender replies to that peer only.</summary>
        public IpcChannel Sender { get; }

        /// <summary>The process id the sender announced in its handshake.</summary>
        public int SenderProcessId => Sender?.PeerProcessId ?? 0;

        /// <summary>The channel it was received on.</summary>
        public IpcChannel Channel { get; }

        public DateTime ReceivedAt { get; }

        /// <summary>Text, Bytes, CliXml or Json.</summary>
        public string Format { get; }

        /// <summary>Payload size in bytes.</summary>
        public int Size { get; }
    }
}
