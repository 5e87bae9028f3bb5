using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// The message ring of a queue segment: records of [u32 payload length | u8 format | 3 zero bytes | payload,
    /// padded to 8 bytes] one after the other in the data area, which is used circularly. Head and tail are
    /// byte counts that only grow (position = count mod capacity); a record's 8-byte header never straddles the
    /// end because positions and the capacity are multiples of 8, a payload may (it is copied in two parts).
    /// Every method is called with the segment's lock held. A writer advances the tail only after the record is
    /// complete, and a reader the head only after copying it out, so a process killed at any point leaves the
    /// ring consistent. Everything read from shared memory is checked before it is used as a size or an index.
    /// </summary>
    internal sealed unsafe class SharedRing
    {
        public const int RecordHeaderSize = 8;

        private readonly byte* _header;
        private readonly byte* _data;
        private readonly long _capacity;
        private readonly string _name;

        public SharedRing(byte* header, long capacity, string name)
        {
            _header = header;
            _data = header + SegmentHeader.Size;
            _capacity = capacity;
            _name = name;
        }

        public long Capacity => _capacity;

        /// <summary>The largest payload one record can carry: the whole ring but its record header.</summary>
        public long MaxPayload => Math.Min(_capacity - RecordHeaderSize, int.MaxValue - 8);

        private ref long Head => ref *(long*)(_header + SegmentHeader.HeadOffset);
        private ref long Tail => ref *(long*)(_header + SegmentHeader.TailOffset);

        public int* DataSignal => (int*)(_header + SegmentHeader.DataSignalOffset);
        public int* SpaceSignal => (int*)(_header + SegmentHeader.SpaceSignalOffset);
        public int* ConsumersWaiting => (int*)(_header + SegmentHeader.ConsumersWaitingOffset);
        public int* ProducersWaiting => (int*)(_header + SegmentHeader.ProducersWaitingOffset);

        public long UsedBytes => Volatile.Read(ref Tail) - Volatile.Read(ref Head);

        public long Count => *(long*)(_header + SegmentHeader.EnqueuedOffset) - *(long*)(_header + SegmentHeader.DequeuedOffset);

        public static long RecordSize(long payloadLength) => RecordHeaderSize + ((payloadLength + 7) & ~7L);

        /// <summary>Null when head and tail are consistent, else what is wrong.</summary>
        public string CheckInvariants()
        {
            long head = Volatile.Read(ref Head), tail = Volatile.Read(ref Tail);
            if (head < 0 || tail < head) return $"head {head} and tail {tail} are out of order";
            if (tail - head > _capacity) return $"{tail - head} bytes are queued in a ring of {_capacity}";
            if ((head & 7) != 0 || (tail & 7) != 0) return $"head {head} or tail {tail} is not a multiple of 8";
            return null;
        }

        /// <summary>Appends one record; false when the ring has no room for it now.</summary>
        public bool TryWrite(MessageFormat format, byte[] payload)
        {
            long head = Volatile.Read(ref Head), tail = Tail;
            ThrowIfInconsistent(head, tail);
            long need = RecordSize(payload.Length);
            if (tail - head + need > _capacity) return false;
            long at = tail % _capacity;
            *(uint*)(_data + at) = (uint)payload.Length;
            *(uint*)(_data + at + 4) = (byte)format;
            CopyIn(payload, (at + RecordHeaderSize) % _capacity);
            Volatile.Write(ref Tail, tail + need); // publish: the record is complete
            *(long*)(_header + SegmentHeader.EnqueuedOffset) += 1;
            Interlocked.Increment(ref *DataSignal);
            return true;
        }

        /// <summary>
        /// Takes up to <paramref name="max"/> records (and about <paramref name="maxBytes"/>; always at least one
        /// when there is one) into <paramref name="into"/>. Returns how many.
        /// </summary>
        public int Read(List<IpcMessage> into, int max, long maxBytes, IpcChannel sender, out long bytes)
        {
            bytes = 0;
            long head = Head, tail = Volatile.Read(ref Tail);
            ThrowIfInconsistent(head, tail);
            int n = 0;
            while (n < max && head != tail && (n == 0 || bytes < maxBytes))
            {
                long at = head % _capacity;
                long length = *(uint*)(_data + at);
                uint format = *(uint*)(_data + at + 4);
                long size = RecordSize(length);
                if (size > tail - head || !FrameTypes.IsData((FrameType)format) || (format & 0xFFFFFF00) != 0)
                {
                    throw Corrupt($"the record at {head} says {length} bytes of format {format} but {tail - head} bytes are queued");
                }
                var payload = new byte[length];
                CopyOut(payload, (at + RecordHeaderSize) % _capacity);
                into.Add(new IpcMessage((MessageFormat)format, payload, sender));
                head += size;
                bytes += length;
                n++;
            }
            if (n > 0)
            {
                Volatile.Write(ref Head, head); // release the space only after the records were copied out
                *(long*)(_header + SegmentHeader.DequeuedOffset) += n;
                Interlocked.Increment(ref *SpaceSignal);
            }
            return n;
        }

        private void CopyIn(byte[] source, long at)
        {
            long first = Math.Min(source.Length, _capacity - at);
            fixed (byte* s = source)
            {
                Buffer.MemoryCopy(s, _data + at, first, first);
                if (first < source.Length) Buffer.MemoryCopy(s + first, _data, source.Length - first, source.Length - first);
            }
        }

        private void CopyOut(byte[] target, long at)
        {
            long first = Math.Min(target.Length, _capacity - at);
            fixed (byte* t = target)
            {
                Buffer.MemoryCopy(_data + at, t, first, first);
                if (first < target.Length) Buffer.MemoryCopy(_data, t + first, target.Length - first, target.Length - first);
            }
        }

        private void ThrowIfInconsistent(long head, long tail)
        {
            if (head < 0 || tail < head || tail - head > _capacity || ((head | tail) & 7) != 0)
            {
                throw Corrupt($"head {head} and tail {tail} do not fit a ring of {_capacity} bytes");
            }
        }

        private IpcException Corrupt(string problem)
        {
            *(uint*)(_header + SegmentHeader.FlagsOffset) |= SegmentHeader.FlagDamaged;
            return new IpcException(IpcErrorKind.SharedMemoryCorrupt, $"The queue '{_name}' is corrupt: {problem}. Remove it and create it again.", _name);
        }
    }
}
