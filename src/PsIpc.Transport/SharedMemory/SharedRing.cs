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
    /// ring consistent. Everything read from shared memory is checked before it is used as a size or an index,
    /// and no sum of such values can overflow: head and tail are at most <see cref="MaxPosition"/> (2^62), so a
    /// batch (at most one ring, 2^40 bytes) added to them stays far below 2^63.
    /// </summary>
    internal sealed unsafe partial class SharedRing
    {
        public const int RecordHeaderSize = 8;

        /// <summary>
        /// The largest head or tail a consistent ring has: 2^62 bytes (4 EiB, 146 years at 1 GB/s). A larger one
        /// comes from a damaged or hostile header, and one batch more could overflow a 64-bit position.
        /// </summary>
        public const long MaxPosition = 1L << 62;

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
        private int* DataSleep => (int*)(_header + SegmentHeader.DataSleepOffset);
        private int* SpaceSleep => (int*)(_header + SegmentHeader.SpaceSleepOffset);

        /// <summary>True when a record may be queued; a hint read without the lock (the lock holder decides).</summary>
        public bool MayHaveData => Volatile.Read(ref Tail) != Volatile.Read(ref Head);

        /// <summary>
        /// Registers a consumer that found the ring empty and is about to sleep (under the lock); returns the data
        /// signal to sleep on. The caller decrements <see cref="ConsumersWaiting"/> when it is awake again.
        /// </summary>
        public int RegisterConsumerSleep() => RegisterSleep(ConsumersWaiting, DataSignal, DataSleep);

        /// <summary>As <see cref="RegisterConsumerSleep"/>, for a producer that found no room.</summary>
        public int RegisterProducerSleep() => RegisterSleep(ProducersWaiting, SpaceSignal, SpaceSleep);

        private static int RegisterSleep(int* waiting, int* signal, int* sleep)
        {
            Interlocked.Increment(ref *waiting);
            int value = Volatile.Read(ref *signal);
            Volatile.Write(ref *sleep, value);
            return value;
        }

        /// <summary>
        /// Bumps a signal (under the lock) and tells whether the caller must wake its sleepers after releasing the
        /// lock: only when someone sleeps on the value it had. A sleeper registered at value v is woken by the first
        /// bump from v (FUTEX_WAKE wakes every sleeper on the word); later bumps until someone registers again find
        /// nobody asleep on their value and skip the system call.
        /// </summary>
        private static bool Bump(int* signal, int* waiting, int* sleep)
        {
            int value = *signal;
            Volatile.Write(ref *signal, value + 1); // under the lock, whose release is a full fence
            return Volatile.Read(ref *waiting) > 0 && Volatile.Read(ref *sleep) == value;
        }

        public long UsedBytes => Volatile.Read(ref Tail) - Volatile.Read(ref Head);

        public long Count => *(long*)(_header + SegmentHeader.EnqueuedOffset) - *(long*)(_header + SegmentHeader.DequeuedOffset);

        public static long RecordSize(long payloadLength) => RecordHeaderSize + ((payloadLength + 7) & ~7L);

        /// <summary>Null when head and tail are consistent, else what is wrong.</summary>
        public string? CheckInvariants() => CheckCounters(Volatile.Read(ref Head), Volatile.Read(ref Tail), _capacity);

        /// <summary>
        /// Null when a ring of <paramref name="capacity"/> bytes can have this head and tail, else what is wrong.
        /// Overflow-safe for any values: tail - head is computed only once both are known to be in [0, 2^62].
        /// </summary>
        public static string? CheckCounters(long head, long tail, long capacity)
        {
            if (head < 0 || tail < head) return $"head {head} and tail {tail} are out of order";
            if (tail > MaxPosition) return $"tail {tail} is beyond the largest position a ring reaches ({MaxPosition})";
            if (tail - head > capacity) return $"{tail - head} bytes are queued in a ring of {capacity}";
            if ((head & 7) != 0 || (tail & 7) != 0) return $"head {head} or tail {tail} is not a multiple of 8";
            return null;
        }

        /// <summary>
        /// Appends as many of <paramref name="count"/> records from <paramref name="payloads"/>[<paramref name="start"/>]
        /// on as fit now, in order, and publishes them together (one tail update, one signal). Returns how many.
        /// </summary>
        public int WriteMany(MessageFormat format, IList<byte[]> payloads, int start, int count, out bool wakeConsumers)
        {
            wakeConsumers = false;
            long head = Volatile.Read(ref Head), tail = Tail;
            ThrowIfInconsistent(head, tail);
            long end = tail;
            int n = 0;
            while (n < count)
            {
                byte[] payload = payloads[start + n];
                long need = RecordSize(payload.Length);
                // end - head <= capacity <= 2^40 and need <= 2^31 + 16: no overflow; end stays <= head + capacity.
                if (end - head + need > _capacity) break;
                if (end + need > MaxPosition) throw Corrupt($"its byte count would pass {MaxPosition}");
                WriteRecord(end, format, payload);
                end += need;
                n++;
            }
            if (n > 0) wakeConsumers = Publish(end, n);
            return n;
        }

        private void WriteRecord(long position, MessageFormat format, byte[] payload)
        {
            long at = Slot(position);
            *(uint*)(_data + at) = (uint)payload.Length;
            *(uint*)(_data + at + 4) = (byte)format;
            CopyIn(payload, PayloadPosition(at));
        }

        private bool Publish(long tail, int records)
        {
            Volatile.Write(ref Tail, tail); // publish: the records are complete
            *(long*)(_header + SegmentHeader.EnqueuedOffset) += records;
            return Bump(DataSignal, ConsumersWaiting, DataSleep);
        }

        /// <summary>
        /// Puts records taken by <see cref="Read"/> back in front of the head, in order, so that the next reader of
        /// any process takes them first. False (nothing changed) when the ring has no room for them any more.
        /// The space before the head is free; the records are written there and become visible only when the head
        /// moves back over them, so a process killed in between leaves the ring as it was.
        /// </summary>
        public bool TryUnread(IList<IpcMessage> messages, int start, out bool wakeConsumers)
        {
            wakeConsumers = false;
            long head = Head, tail = Volatile.Read(ref Tail);
            ThrowIfInconsistent(head, tail);
            long need = 0;
            for (int i = start; i < messages.Count && need <= _capacity; i++) need += RecordSize(messages[i].Payload.Length);
            if (need > _capacity || tail - head + need > _capacity || need > head) return false;
            long at = head - need;
            for (int i = start; i < messages.Count; i++)
            {
                WriteRecord(at, messages[i].Format, messages[i].Payload);
                at += RecordSize(messages[i].Payload.Length);
            }
            Volatile.Write(ref Head, head - need);
            *(long*)(_header + SegmentHeader.DequeuedOffset) -= messages.Count - start;
            wakeConsumers = Bump(DataSignal, ConsumersWaiting, DataSleep);
            return true;
        }

        /// <summary>Batches up to this many ring bytes are taken as one copy (<see cref="Taken"/>); larger ones record by record.</summary>
        public const int CopyBatchLimit = 256 * 1024;

        /// <summary>
        /// A record at least this long (one whose array lands on the large object heap) is taken alone, straight into
        /// an array that <see cref="Read"/>'s caller made before it took the lock (<see cref="LargeTarget"/>).
        /// </summary>
        public const int LargeRecordMinimum = PayloadArrays.PooledMinimum;

        [ThreadStatic] private static byte[]? t_scratch;

        /// <summary>
        /// Takes up to <paramref name="max"/> records (and about <paramref name="maxBytes"/> of payload; always at least
        /// one when there is one). A batch of at most <see cref="CopyBatchLimit"/> ring bytes comes back in
        /// <paramref name="taken"/> for <see cref="Unpack"/> after the lock is released; a larger one is copied into
        /// messages in <paramref name="into"/> right here. A record of <see cref="LargeRecordMinimum"/> bytes or more
        /// ends a batch and is taken alone, into <paramref name="large"/>'s array (or is left, see
        /// <see cref="LargeTarget"/>). Returns how many records were taken.
        /// </summary>
        public int Read(List<IpcMessage> into, int max, long maxBytes, IpcChannel sender, ref LargeTarget large, out long bytes, out bool wakeProducers, out Taken taken)
        {
            bytes = 0;
            wakeProducers = false;
            taken = default(Taken);
            large.Wanted = 0;
            long head = Head, tail = Volatile.Read(ref Tail);
            ThrowIfInconsistent(head, tail);
            // First the batch: every record header is checked before anything is used as a size.
            long end = head;
            int n = 0;
            bool alone = false;
            while (n < max && end != tail && (n == 0 || bytes < maxBytes))
            {
                long at = Slot(end);
                long length = *(uint*)(_data + at);
                uint format = *(uint*)(_data + at + 4);
                long size = RecordSize(length);
                if (size > tail - end || !FrameTypes.IsData((FrameType)format) || (format & 0xFFFFFF00) != 0)
                {
                    throw Corrupt($"the record at {end} says {length} bytes of format {format} but {tail - end} bytes are queued");
                }
                if (length >= LargeRecordMinimum)
                {
                    if (n > 0) break; // it goes alone, in the next call
                    if (length > MaxPayload) throw Corrupt($"the record at {end} says {length} bytes, more than a record can hold");
                    if (!TakeLarge(at, (int)length, (MessageFormat)format, into, sender, ref large)) return 0;
                    alone = true;
                }
                end += size;
                bytes += length;
                n++;
                if (alone) break;
            }
            if (n == 0) return 0;
            // A record taken alone was copied by TakeLarge; a batch is copied here.
            long span = end - head;
            if (!alone)
            {
                if (span <= CopyBatchLimit)
                {
                    byte[]? scratch = t_scratch;
                    if (scratch == null || scratch.Length < span) t_scratch = scratch = new byte[Math.Max(span, 4096)];
                    CopyOut(scratch, (int)span, Slot(head));
                    taken = new Taken { Buffer = scratch, Length = (int)span, Count = n };
                }
                else
                {
                    CopyRecords(into, head, end, sender);
                }
            }
            Volatile.Write(ref Head, end); // release the space only after the records were copied out
            *(long*)(_header + SegmentHeader.DequeuedOffset) += n;
            wakeProducers = Bump(SpaceSignal, ProducersWaiting, SpaceSleep);
            return n;
        }

        // A batch too large for one copy (more than CopyBatchLimit ring bytes): copied record by record into messages.
        private void CopyRecords(List<IpcMessage> into, long head, long end, IpcChannel sender)
        {
            DateTime receivedAt = DateTime.Now;
            for (long position = head; position != end;)
            {
                // Read again and checked again: a process that scribbled on the ring since the first pass
                // gets an error, never a copy beyond the batch or the mapping.
                long at = Slot(position);
                long length = *(uint*)(_data + at);
                uint format = *(uint*)(_data + at + 4);
                if (RecordSize(length) > end - position || !FrameTypes.IsData((FrameType)format) || (format & 0xFFFFFF00) != 0)
                {
                    throw Corrupt($"the record at {position} changed while it was taken");
                }
                byte[] payload = PayloadArrays.Rent((int)length); // filled completely: need not be zeroed (and comes back from ReceiveInto)
                CopyOut(payload, payload.Length, PayloadPosition(at));
                into.Add(new IpcMessage((MessageFormat)format, payload, sender, receivedAt));
                position += RecordSize(length);
            }
        }

        /// <summary>
        /// Copies the large record at ring offset <paramref name="at"/> (its header checked by the caller) into the
        /// caller's array when that has its length, or into one rented here when <see cref="LargeTarget.MayAllocate"/>;
        /// else leaves it and sets <see cref="LargeTarget.Wanted"/>. True when it was copied.
        /// </summary>
        private bool TakeLarge(long at, int length, MessageFormat format, List<IpcMessage> into, IpcChannel sender, ref LargeTarget large)
        {
            byte[]? payload = large.Array;
            if (payload != null && payload.Length == length)
            {
                large.Array = null;
            }
            else if (large.MayAllocate)
            {
                payload = PayloadArrays.Rent(length); // filled completely: need not be zeroed
            }
            else
            {
                large.Wanted = length;
                return false;
            }
            CopyOut(payload, length, PayloadPosition(at));
            into.Add(new IpcMessage(format, payload, sender, DateTime.Now));
            return true;
        }

        /// <summary>
        /// Turns records that <see cref="Read"/> copied out into messages (no lock needed). The copy is checked again
        /// as it is read: a process that scribbled on the ring between the check and the copy gives an error, never
        /// a read outside the buffer.
        /// </summary>
        public void Unpack(Taken taken, List<IpcMessage> into, IpcChannel sender)
        {
            byte[] b = taken.Buffer;
            DateTime receivedAt = DateTime.Now;
            int offset = 0;
            for (int i = 0; i < taken.Count; i++)
            {
                long length = taken.Length - offset >= RecordHeaderSize ? BitConverter.ToUInt32(b, offset) : -1;
                byte format = length >= 0 ? b[offset + 4] : (byte)0;
                if (length < 0 || RecordSize(length) > taken.Length - offset || !FrameTypes.IsData((FrameType)format))
                {
                    throw new IpcException(IpcErrorKind.SharedMemoryCorrupt,
                        $"The queue '{_name}' is corrupt: a record changed while it was taken. Remove it and create it again.", _name);
                }
                byte[] payload = PayloadArrays.Rent((int)length);
                System.Buffer.BlockCopy(b, offset + RecordHeaderSize, payload, 0, (int)length);
                into.Add(new IpcMessage((MessageFormat)format, payload, sender, receivedAt));
                offset += (int)RecordSize(length);
            }
        }

        /// <summary>
        /// The offset in the data area of a position (a byte count): checked to leave room for a record header
        /// inside the ring, so that no value read from shared memory can make a pointer outside the mapping.
        /// </summary>
        private long Slot(long position)
        {
            if (position < 0 || position > MaxPosition + _capacity) throw Corrupt($"the position {position} is out of range");
            long at = position % _capacity;
            if (at > _capacity - RecordHeaderSize || (at & 7) != 0) throw Corrupt($"the position {position} is not a record boundary");
            return at;
        }

        /// <summary>Where the payload of the record at <paramref name="at"/> starts (at + 8, or 0 at the end of the ring).</summary>
        private long PayloadPosition(long at)
        {
            long p = at + RecordHeaderSize;
            return p == _capacity ? 0 : p;
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

        /// <summary>Copies <paramref name="count"/> bytes starting at ring offset <paramref name="at"/> (wrapping at the end) into <paramref name="target"/>.</summary>
        private void CopyOut(byte[] target, int count, long at)
        {
            long first = Math.Min(count, _capacity - at);
            fixed (byte* t = target)
            {
                Buffer.MemoryCopy(_data + at, t, first, first);
                if (first < count) Buffer.MemoryCopy(_data, t + first, count - first, count - first);
            }
        }

        private void ThrowIfInconsistent(long head, long tail)
        {
            string? problem = CheckCounters(head, tail, _capacity);
            if (problem != null) throw Corrupt(problem);
        }

        private IpcException Corrupt(string problem)
        {
            *(uint*)(_header + SegmentHeader.FlagsOffset) |= SegmentHeader.FlagDamaged;
            return new IpcException(IpcErrorKind.SharedMemoryCorrupt, $"The queue '{_name}' is corrupt: {problem}. Remove it and create it again.", _name);
        }
    }
}
