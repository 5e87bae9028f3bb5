namespace PsIpc.Transport.SharedMemory
{
    // What SharedRing.Read hands back besides messages, and what its caller hands in.
    internal sealed partial class SharedRing
    {
        /// <summary>
        /// Records a small batch copied out of the ring as they lie there (headers, payloads and padding), to be
        /// unpacked into messages after the lock is released: the lock is then held for one copy, not for an
        /// allocation per message. Private to the thread that took it.
        /// </summary>
        public struct Taken
        {
            public byte[] Buffer;
            public int Length;
            public int Count;
        }

        /// <summary>
        /// Where <see cref="Read"/> puts a large record. A new large array costs more than the copy into it (page faults
        /// on its first touch, and zeroing where the runtime cannot skip it): made under the lock, that time held up
        /// every producer. So Read leaves a large record that has no array of its length in place and says how long it
        /// is (<see cref="Wanted"/>); the caller makes the array outside the lock and calls again.
        /// </summary>
        public struct LargeTarget
        {
            /// <summary>In: an array made outside the lock (taken, and set to null, when the record has its length).</summary>
            public byte[]? Array;

            /// <summary>In: without a fitting array, rent one under the lock (a poll, or a second try) instead of asking.</summary>
            public bool MayAllocate;

            /// <summary>Out: the length of the large record that was left for want of an array; 0 when none was.</summary>
            public int Wanted;
        }
    }
}
