using System;
using System.Threading;

namespace PsIpc.Transport.Channels
{
    // What a channel counts besides messages and bytes: errors, drops and when it last moved a message. Kept cheap:
    // one interlocked add or exchange on paths that already run (a send, a batch received, a fault reported).
    public abstract partial class IpcChannel
    {
        private long _errors, _dropped, _lastSentTicks, _lastReceivedTicks;

        /// <summary>
        /// Errors on this channel: sends that failed (a timeout, a peer gone, a message too large), connections that
        /// ended with an error (a server counts its clients'), faults reported in the receive stream.
        /// </summary>
        public long Errors => Interlocked.Read(ref _errors);

        /// <summary>Messages discarded without being delivered (a UDP datagram that was malformed, too large or found the queue full).</summary>
        public long Dropped => Interlocked.Read(ref _dropped);

        /// <summary>When this channel last sent a message (local time); null before the first.</summary>
        public DateTime? LastSentAt => ToLocalTime(Interlocked.Read(ref _lastSentTicks));

        /// <summary>When a message last arrived on this channel (local time); null before the first.</summary>
        public DateTime? LastReceivedAt => ToLocalTime(Interlocked.Read(ref _lastReceivedTicks));

        /// <summary>When this channel last sent or received a message (local time); null when it has done neither.</summary>
        public DateTime? LastActivity => ToLocalTime(Math.Max(Interlocked.Read(ref _lastSentTicks), Interlocked.Read(ref _lastReceivedTicks)));

        /// <summary>The counters at this moment, as one object (Get-IpcChannel | Select-Object -ExpandProperty Statistics).</summary>
        public ChannelStatistics Statistics => new ChannelStatistics(this);

        /// <summary>Counts an error of this channel (see <see cref="Errors"/>).</summary>
        protected internal void CountError() => Interlocked.Increment(ref _errors);

        /// <summary>Counts messages this channel discarded (see <see cref="Dropped"/>).</summary>
        protected internal void CountDropped(long messages = 1) => Interlocked.Add(ref _dropped, messages);

        private void MarkSent() => Interlocked.Exchange(ref _lastSentTicks, DateTime.UtcNow.Ticks);

        private void MarkReceived() => Interlocked.Exchange(ref _lastReceivedTicks, DateTime.UtcNow.Ticks);

        private static DateTime? ToLocalTime(long utcTicks) =>
            utcTicks == 0 ? (DateTime?)null : new DateTime(utcTicks, DateTimeKind.Utc).ToLocalTime();
    }

    /// <summary>A channel's counters at one moment: messages, bytes, errors, drops and the last activity.</summary>
    public sealed class ChannelStatistics
    {
        internal ChannelStatistics(IpcChannel channel)
        {
            Name = channel.Name;
            Kind = channel.Kind;
            Role = channel.Role;
            MessagesSent = channel.MessagesSent;
            MessagesReceived = channel.MessagesReceived;
            BytesSent = channel.BytesSent;
            BytesReceived = channel.BytesReceived;
            Errors = channel.Errors;
            Dropped = channel.Dropped;
            LastSentAt = channel.LastSentAt;
            LastReceivedAt = channel.LastReceivedAt;
            CreatedAt = channel.CreatedAt;
        }

        public string Name { get; }
        public ChannelKind Kind { get; }
        public ChannelRole Role { get; }
        public long MessagesSent { get; }
        public long MessagesReceived { get; }
        public long BytesSent { get; }
        public long BytesReceived { get; }
        public long Errors { get; }
        public long Dropped { get; }
        public DateTime? LastSentAt { get; }
        public DateTime? LastReceivedAt { get; }
        public DateTime CreatedAt { get; }

        public DateTime? LastActivity =>
            LastSentAt == null ? LastReceivedAt : LastReceivedAt == null ? LastSentAt : LastSentAt > LastReceivedAt ? LastSentAt : LastReceivedAt;

        public override string ToString() =>
            $"sent {MessagesSent} ({BytesSent} bytes), received {MessagesReceived} ({BytesReceived} bytes), {Errors} errors, {Dropped} dropped";
    }
}
