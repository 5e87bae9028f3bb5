using System;
using System.Text;

namespace PsIpc.Transport.SharedMemory
{
    public enum SharedMemoryKind
    {
        Segment = 1,
        Queue = 2,
    }

    /// <summary>
    /// The 128-byte header at the start of every segment file (docs/protocol.md, "Shared memory"). All fields
    /// little-endian; the 32-bit words that processes sleep on are 4-byte aligned. Offsets are constants here so
    /// that the layout is in one place.
    /// </summary>
    internal static unsafe class SegmentHeader
    {
        public const int Size = 128;
        public const ulong Magic = 0x4D48534350495350UL; // "PSIPCSHM" read as a little-endian u64
        public const int CurrentVersion = 2; // 2: the sleep words of a queue (112, 116)

        // Common part.
        public const int MagicOffset = 0;          // u64 "PSIPCSHM"
        public const int VersionOffset = 8;        // u32
        public const int HeaderSizeOffset = 12;    // u32, 128
        public const int KindOffset = 16;          // u32, SharedMemoryKind
        public const int FlagsOffset = 20;         // u32, bit 0: damaged (a writer died mid-write)
        public const int CapacityOffset = 24;      // u64, bytes of the data area
        public const int TotalSizeOffset = 32;     // u64, header + data area = file size
        public const int LockOffset = 40;          // i32, pid of the lock holder, 0 when free
        public const int LockWaitersOffset = 44;   // i32, processes sleeping on the lock word
        public const int LockRecoveriesOffset = 48;// i32, times a dead holder's lock was taken over
        public const int CreatorPidOffset = 52;    // i32
        public const int CreatedAtOffset = 56;     // i64, Unix time in milliseconds

        // Segment part.
        public const int WriteSequenceOffset = 64; // u64, odd while a write is in progress
        public const int ValueFormatOffset = 72;   // u32, 0: no value; else the MessageFormat byte
        public const int ValueLengthOffset = 80;   // u64, bytes of the value at the start of the data area
        public const int WriteCountOffset = 88;    // u64, writes so far

        // Queue part.
        public const int HeadOffset = 64;          // u64, bytes ever read (monotonic)
        public const int TailOffset = 72;          // u64, bytes ever written (monotonic)
        public const int DataSignalOffset = 80;    // i32, incremented on every write: consumers sleep on it
        public const int SpaceSignalOffset = 84;   // i32, incremented on every read: producers sleep on it
        public const int ConsumersWaitingOffset = 88; // i32
        public const int ProducersWaitingOffset = 92; // i32
        public const int EnqueuedOffset = 96;      // u64, messages ever written
        public const int DequeuedOffset = 104;     // u64, messages ever read
        public const int DataSleepOffset = 112;    // i32, the data signal the latest consumer went to sleep on
        public const int SpaceSleepOffset = 116;   // i32, the space signal the latest producer went to sleep on

        public const uint FlagDamaged = 1;

        public const long MinCapacity = 64;
        public const long MaxCapacity = 1L << 40; // 1 TiB

        /// <summary>Fills a zeroed header of a new segment.</summary>
        public static void Initialize(byte* b, SharedMemoryKind kind, long capacity)
        {
            *(int*)(b + VersionOffset) = CurrentVersion;
            *(int*)(b + HeaderSizeOffset) = Size;
            *(int*)(b + KindOffset) = (int)kind;
            *(long*)(b + CapacityOffset) = capacity;
            *(long*)(b + TotalSizeOffset) = Size + capacity;
            *(int*)(b + CreatorPidOffset) = System.Diagnostics.Process.GetCurrentProcess().Id;
            *(long*)(b + CreatedAtOffset) = (long)(DateTime.UtcNow - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalMilliseconds;
            // The magic last: a process that opens the file before this point sees "not initialized yet".
            System.Threading.Volatile.Write(ref *(long*)(b + MagicOffset), unchecked((long)Magic));
        }

        /// <summary>
        /// Checks a header against the file it is in. Returns null when it is valid, else why not. Reads only
        /// inside the first <paramref name="fileLength"/> bytes.
        /// </summary>
        public static string? Validate(byte* b, long fileLength, out SharedMemoryKind kind, out long capacity)
        {
            kind = 0;
            capacity = 0;
            if (fileLength < Size) return $"the file has {fileLength} bytes, less than the {Size}-byte header";
            ulong magic = *(ulong*)(b + MagicOffset);
            if (magic == 0) return "the header is not initialized (the creator may still be writing it, or died first)";
            if (magic != Magic) return "it does not start with the PsIpc magic 'PSIPCSHM' (not a PsIpc segment)";
            int version = *(int*)(b + VersionOffset);
            if (version != CurrentVersion) return $"its layout version is {version}; this PsIpc reads version {CurrentVersion}";
            int headerSize = *(int*)(b + HeaderSizeOffset);
            if (headerSize != Size) return $"its header size is {headerSize}, expected {Size}";
            int k = *(int*)(b + KindOffset);
            if (k != (int)SharedMemoryKind.Segment && k != (int)SharedMemoryKind.Queue) return $"its kind {k} is unknown";
            long cap = *(long*)(b + CapacityOffset);
            long total = *(long*)(b + TotalSizeOffset);
            if (cap < MinCapacity || cap > MaxCapacity) return $"its capacity {cap} is out of range";
            if (total != Size + cap) return $"its total size {total} does not match header + capacity ({Size + cap})";
            if (total != fileLength) return $"the header says {total} bytes but the file has {fileLength}";
            if (k == (int)SharedMemoryKind.Queue && cap % 8 != 0) return $"its queue capacity {cap} is not a multiple of 8";
            kind = (SharedMemoryKind)k;
            capacity = cap;
            return null;
        }

        public static string Describe(SharedMemoryKind kind) => kind == SharedMemoryKind.Queue ? "queue" : "segment";
    }
}
