using System;
using System.Text;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport
{
    /// <summary>A message as it arrived: its format, its payload bytes, who sent it and when.</summary>
    public sealed class IpcMessage
    {
        private static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, false);

        internal IpcMessage(MessageFormat format, byte[] payload, IpcChannel sender)
            : this(format, payload, sender, DateTime.Now)
        {
        }

        /// <summary>For a batch taken at once: DateTime.Now costs more than the rest of a small message.</summary>
        internal IpcMessage(MessageFormat format, byte[] payload, IpcChannel sender, DateTime receivedAt)
        {
            Format = format;
            Payload = payload;
            Sender = sender;
            ReceivedAt = receivedAt;
        }

        private IpcMessage(IpcException fault, IpcChannel sender)
        {
            Payload = Array.Empty<byte>();
            Fault = fault;
            Sender = sender;
            ReceivedAt = DateTime.Now;
        }

        internal static IpcMessage ForFault(IpcException fault, IpcChannel sender) => new IpcMessage(fault, sender);

        /// <summary>
        /// A received message, for a transport's <c>ReceiveCore</c>. <paramref name="deliveryToken"/> is the
        /// transport's own handle on it (a broker's delivery tag), given back in Acknowledge and Reject.
        /// </summary>
        public static IpcMessage Create(MessageFormat format, byte[] payload, IpcChannel sender, object? deliveryToken = null)
        {
            if (payload == null) throw new ArgumentNullException(nameof(payload));
            if (sender == null) throw new ArgumentNullException(nameof(sender));
            return new IpcMessage(format, payload, sender, DateTime.Now) { DeliveryToken = deliveryToken };
        }

        /// <summary>An error at this point of a stream (see <see cref="Fault"/>), for a transport's <c>ReceiveCore</c>.</summary>
        public static IpcMessage CreateFault(IpcException fault, IpcChannel sender)
        {
            if (fault == null) throw new ArgumentNullException(nameof(fault));
            if (sender == null) throw new ArgumentNullException(nameof(sender));
            return new IpcMessage(fault, sender);
        }

        /// <summary>The transport's own handle on this message (a broker's delivery tag); null for most transports.</summary>
        public object? DeliveryToken { get; private set; }

        private IpcMessage(IpcChannel sender)
        {
            Payload = Array.Empty<byte>();
            IsEndOfInput = true;
            Sender = sender;
            ReceivedAt = DateTime.Now;
        }

        /// <summary>The marker of a Line/Raw client that shut down its sending side (see <see cref="IsEndOfInput"/>).</summary>
        internal static IpcMessage ForEndOfInput(IpcChannel sender) => new IpcMessage(sender);

        /// <summary>
        /// Not a message: the sender (a Line or Raw client of a server with a handler) will send nothing more
        /// but still reads; it comes after that sender's last message, so a handler answers everything before
        /// it and then closes the connection.
        /// </summary>
        public bool IsEndOfInput { get; }

        public MessageFormat Format { get; }

        /// <summary>The message's bytes; empty for a <see cref="Fault"/> or an end-of-input marker.</summary>
        public byte[] Payload { get; }

        /// <summary>The endpoint that sent it; sending to it replies to that peer only.</summary>
        public IpcChannel Sender { get; }

        public DateTime ReceivedAt { get; }

        /// <summary>Not a message but an error that happened at this point of the stream (a peer that died
        /// mid-message, a protocol error). The messages before it were delivered.</summary>
        public IpcException? Fault { get; }

        public int Size => Payload.Length;

        /// <summary>
        /// The correlation id of a request (docs/protocol.md 4): a reply sent with <see cref="IpcChannel.Reply"/>
        /// carries it back, so the requester matches it to its request. 0 for a plain message.
        /// </summary>
        public uint CorrelationId { get; internal set; }

        /// <summary>Bytes of a server's receive budget this message holds until the server hands it out.</summary>
        internal long BudgetHeld { get; set; }

        public string GetText() => Utf8.GetString(Payload);

        public static byte[] EncodeText(string text) => Utf8.GetBytes(text);
    }
}
