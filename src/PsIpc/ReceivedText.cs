using System.Runtime.CompilerServices;
using System.Text;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;

namespace PsIpc
{
    /// <summary>
    /// Receive-IpcMessage -Encoding: Bytes messages written as text. Raw framing hands out whatever one read returned,
    /// so a character can be split between two messages: the bytes of a Raw stream go through one decoder per sender
    /// that is kept (with the sender) from one Receive-IpcMessage to the next, and a character split between reads
    /// comes out whole in the later message. Every other Bytes message (a datagram, a PsIpc Bytes frame, a queue
    /// message) is a whole message and is decoded by itself. Invalid bytes become U+FFFD, as Get-Content reads them.
    /// </summary>
    internal sealed class ReceivedText
    {
        private sealed class StreamDecoder
        {
            private Encoding? _encoding;
            private Decoder? _decoder;

            /// <summary>The decoder for this encoding: another -Encoding than the last Receive-IpcMessage used starts over.</summary>
            public Decoder For(Encoding encoding)
            {
                if (_decoder == null || !encoding.Equals(_encoding))
                {
                    _encoding = encoding;
                    _decoder = encoding.GetDecoder();
                }
                return _decoder;
            }
        }

        // Per sender (a Raw connection): the decoder and the bytes of a character it still waits for.
        private static readonly ConditionalWeakTable<IpcChannel, StreamDecoder> s_streams = new ConditionalWeakTable<IpcChannel, StreamDecoder>();

        private readonly Encoding _encoding;

        public ReceivedText(Encoding encoding) => _encoding = encoding;

        /// <summary>True for the messages -Encoding applies to: bytes, not text or objects.</summary>
        public static bool Applies(IpcMessage message) => message.Format == MessageFormat.Bytes;

        /// <summary>The text of a Bytes message; empty when it held only the start of a character (Raw streams).</summary>
        public string Decode(IpcMessage message)
        {
            byte[] bytes = message.Payload;
            if (!IsRawStream(message.Sender)) return _encoding.GetString(bytes);
            StreamDecoder stream = s_streams.GetValue(message.Sender, _ => new StreamDecoder());
            lock (stream)
            {
                Decoder decoder = stream.For(_encoding);
                var chars = new char[decoder.GetCharCount(bytes, 0, bytes.Length, flush: false)];
                int count = decoder.GetChars(bytes, 0, bytes.Length, chars, 0, flush: false);
                return new string(chars, 0, count);
            }
        }

        private static bool IsRawStream(IpcChannel sender)
        {
            switch (sender)
            {
                case IpcPeer peer: return peer.Framing == SocketFraming.Raw;
                case PipeClientChannel pipe: return pipe.Framing == SocketFraming.Raw;
                case SocketClientChannel socket: return socket.Framing == SocketFraming.Raw;
                default: return false; // datagrams, PsIpc frames, queues: whole messages
            }
        }
    }
}
