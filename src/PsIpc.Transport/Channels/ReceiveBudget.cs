using System.Threading;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// Bytes that all connections of one server may hold in unfinished messages together. Each connection
    /// is already bounded by the maximum message size; this bounds their sum, so that many clients each
    /// sending most of a large message (slowly, or never finishing) cannot make the server hold
    /// connections x maximum message size. A reservation that does not fit fails at once: that
    /// connection is closed (ServerBusy) and the others go on.
    /// </summary>
    public sealed class ReceiveBudget
    {
        private long _used;

        public ReceiveBudget(long limit)
        {
            Limit = limit;
        }

        public long Limit { get; }

        public long Used => Interlocked.Read(ref _used);

        public bool TryReserve(long bytes)
        {
            if (bytes <= 0) return true;
            while (true)
            {
                long used = Interlocked.Read(ref _used);
                if (used + bytes > Limit) return false;
                if (Interlocked.CompareExchange(ref _used, used + bytes, used) == used) return true;
            }
        }

        public void Release(long bytes)
        {
            if (bytes > 0) Interlocked.Add(ref _used, -bytes);
        }

        public override string ToString() => $"{ChannelOptions.Describe(Limit)} ({ChannelOptions.Describe(Used)} in use)";

        /// <summary>The default for a server: twice its largest message, and at least 256 MiB.</summary>
        public static long DefaultFor(int maxMessageSize) => System.Math.Max(256L * 1024 * 1024, 2L * maxMessageSize);
    }
}
