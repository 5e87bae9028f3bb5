using System;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    /// <summary>Limits of a channel. Every one has a stated default (docs/protocol.md, "Limits").</summary>
    public sealed class ChannelOptions
    {
        /// <summary>Largest payload accepted from a peer, checked before anything is allocated. 64 MiB.</summary>
        public int MaxMessageSize { get; set; } = FrameHeader.DefaultMaxMessageSize;

        /// <summary>Bytes a sender may queue per connection before Send waits (back-pressure). 4 MiB.</summary>
        public long SendBufferBytes { get; set; } = 4 * 1024 * 1024;

        /// <summary>Messages received but not yet taken before the connection stops reading. 8 MiB / 64k messages.</summary>
        public long ReceiveBufferBytes { get; set; } = 8 * 1024 * 1024;

        public int ReceiveBufferMessages { get; set; } = 65536;

        /// <summary>How long a new connection has to send its Hello. 10 s.</summary>
        public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>
        /// Socket servers: how long a connection may go without a whole message either way before it is
        /// closed (bytes of an unfinished message do not count, so a trickling client is closed too).
        /// 5 minutes; zero: never.
        /// </summary>
        public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(5);

        /// <summary>
        /// Socket servers: bytes of unfinished messages all clients together may make the server hold (set by
        /// the server: twice -MaxMessageSize, at least 256 MiB). Null: none.
        /// </summary>
        public ReceiveBudget? ReceiveBudget { get; set; }

        /// <summary>How long Close waits for queued messages to be written. 30 s.</summary>
        public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>
        /// Servers: how many connections at a time read on a thread of their own (the lowest latency: the kernel wakes
        /// the reader itself); the others read and write asynchronously on the thread pool, so a server's threads do
        /// not grow with its clients. 16; 0: every connection on the thread pool (what the tests of that path set).
        /// </summary>
        internal int ReaderThreads { get; set; } = 16;

        public ChannelOptions Clone() => (ChannelOptions)MemberwiseClone();

        /// <summary>One line a person reads: sizes in KiB/MiB, times in s/min (what Format-List shows for a channel's Options).</summary>
        public override string ToString() =>
            $"MaxMessageSize {Describe(MaxMessageSize)}, SendBuffer {Describe(SendBufferBytes)}, ReceiveBuffer {Describe(ReceiveBufferBytes)}" +
            $" / {ReceiveBufferMessages} messages, Handshake {Describe(HandshakeTimeout)}, Idle {Describe(IdleTimeout)}, Close {Describe(CloseTimeout)}";

        internal static string Describe(long bytes) =>
            bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0 ? $"{bytes / (1024 * 1024)} MiB"
            : bytes >= 1024 && bytes % 1024 == 0 ? $"{bytes / 1024} KiB"
            : $"{bytes} bytes";

        internal static string Describe(TimeSpan time) =>
            time <= TimeSpan.Zero ? "never"
            : time.TotalSeconds >= 60 && time.TotalSeconds % 60 == 0 ? $"{time.TotalMinutes:0} min"
            : $"{time.TotalSeconds:0.###} s";
    }
}
