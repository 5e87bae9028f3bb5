using System;
using System.Collections.Generic;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>What Get-SharedMemory shows about one of the user's segments, read from its header without mapping it.</summary>
    public sealed class SharedMemoryInfo
    {
        private SharedMemoryInfo(string name)
        {
            Name = name;
            Path = SegmentStore.PathOf(name);
            Status = "unreadable";
        }

        public string Name { get; }

        /// <summary>Segment or Queue; null when the header could not be read.</summary>
        public SharedMemoryKind? Kind { get; private set; }

        /// <summary>Bytes of the data area.</summary>
        public long Capacity { get; private set; }

        /// <summary>Segment: bytes of the latest value. Queue: bytes the queued messages take.</summary>
        public long Used { get; private set; }

        /// <summary>Queue: messages waiting. Segment: writes so far.</summary>
        public long Messages { get; private set; }

        /// <summary>Ok, Damaged (a writer died mid-write), or why the segment cannot be used.</summary>
        public string Status { get; private set; }

        public DateTime? CreatedAt { get; private set; }

        public int CreatorProcessId { get; private set; }

        /// <summary>The file (Unix) or map name (Windows).</summary>
        public string Path { get; }

        public override string ToString() => Name;

        /// <summary>The segments of this user (on Windows: those this process opened).</summary>
        public static IReadOnlyList<SharedMemoryInfo> List()
        {
            var list = new List<SharedMemoryInfo>();
            foreach (string name in SegmentStore.ListNames()) list.Add(Read(name));
            return list;
        }

        private static unsafe SharedMemoryInfo Read(string name)
        {
            var info = new SharedMemoryInfo(name);
            byte[]? header = SegmentStore.ReadHeader(name, out string? problem);
            if (header == null || problem != null)
            {
                info.Status = problem ?? info.Status;
                return info;
            }
            fixed (byte* b = header)
            {
                var kind = (SharedMemoryKind)(*(int*)(b + SegmentHeader.KindOffset));
                info.Kind = kind;
                info.Capacity = *(long*)(b + SegmentHeader.CapacityOffset);
                info.CreatorProcessId = *(int*)(b + SegmentHeader.CreatorPidOffset);
                info.CreatedAt = FromUnixMilliseconds(*(long*)(b + SegmentHeader.CreatedAtOffset));
                if (kind == SharedMemoryKind.Queue)
                {
                    long head = *(long*)(b + SegmentHeader.HeadOffset), tail = *(long*)(b + SegmentHeader.TailOffset);
                    string? ring = SharedRing.CheckCounters(head, tail, info.Capacity);
                    if (ring != null)
                    {
                        info.Status = $"the queue is corrupt: {ring}";
                        return info;
                    }
                    info.Used = tail - head;
                    info.Messages = unchecked(*(long*)(b + SegmentHeader.EnqueuedOffset) - *(long*)(b + SegmentHeader.DequeuedOffset));
                }
                else
                {
                    info.Used = *(uint*)(b + SegmentHeader.ValueFormatOffset) == 0 ? 0 : *(long*)(b + SegmentHeader.ValueLengthOffset);
                    info.Messages = *(long*)(b + SegmentHeader.WriteCountOffset);
                }
                info.Status = (*(uint*)(b + SegmentHeader.FlagsOffset) & SegmentHeader.FlagDamaged) != 0 ? "Damaged" : "Ok";
            }
            return info;
        }

        private static readonly DateTime Epoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);

        /// <summary>
        /// The creation time another process wrote: null when no date can hold it (a damaged or hostile header), so
        /// that one such file does not stop Get-SharedMemory from listing the others.
        /// </summary>
        internal static DateTime? FromUnixMilliseconds(long milliseconds)
        {
            long min = (DateTime.MinValue - Epoch).Ticks / TimeSpan.TicksPerMillisecond;
            long max = (DateTime.MaxValue - Epoch).Ticks / TimeSpan.TicksPerMillisecond;
            if (milliseconds < min || milliseconds > max) return null;
            return new DateTime(Epoch.Ticks + milliseconds * TimeSpan.TicksPerMillisecond, DateTimeKind.Utc).ToLocalTime();
        }
    }
}
