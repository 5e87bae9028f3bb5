using System;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// A segment: <see cref="SharedMemoryChannel.Capacity"/> bytes that every process reads and writes under the
    /// segment's lock, plus a "latest value": a payload at the start of the data area whose format and length are
    /// in the header. Every write makes the header's write sequence odd first and even again when done, so a
    /// process that takes over the lock of a writer that died sees the odd sequence and marks the segment
    /// damaged (reading the value then fails with SharedMemoryDamaged until the next whole-value write).
    /// </summary>
    public sealed unsafe class SharedMemorySegment : SharedMemoryChannel
    {
        internal SharedMemorySegment(string name, bool created, SharedMapping mapping, long capacity, ChannelOptions? options)
            : base(name, ChannelKind.Memory, created, mapping, capacity, options)
        {
        }

        public override SharedMemoryKind SegmentKind => SharedMemoryKind.Segment;

        private ref long Sequence => ref *(long*)(Header + SegmentHeader.WriteSequenceOffset);

        /// <summary>Writes so far, by every process.</summary>
        public long WriteCount => WhileMapped(() => Volatile.Read(ref *(long*)(Header + SegmentHeader.WriteCountOffset)));

        /// <summary>Bytes of the latest value (0 when none was written).</summary>
        public long ValueLength => WhileMapped(() => Volatile.Read(ref *(long*)(Header + SegmentHeader.ValueLengthOffset)));

        /// <summary>Publishes a value: readers see the previous one or this one, never a mix.</summary>
        public void WriteValue(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            if (payload == null) throw new ArgumentNullException(nameof(payload));
            CheckFits(payload);
            BeginUse();
            try
            {
                EnterLock(deadline, IpcErrorKind.SharedMemoryLockTimeout, cancellationToken);
                try
                {
                    WriteValueLocked(format, payload);
                }
                finally
                {
                    ExitLock();
                }
                CountSent(payload.Length);
            }
            finally
            {
                EndUse();
            }
        }

        /// <summary>The latest value as a message (its Sender is this segment); null when none was ever written.</summary>
        public IpcMessage? ReadValue(Deadline deadline, CancellationToken cancellationToken)
        {
            BeginUse();
            try
            {
                IpcMessage? value;
                EnterLock(deadline, IpcErrorKind.SharedMemoryLockTimeout, cancellationToken);
                try
                {
                    value = ReadValueLocked();
                }
                finally
                {
                    ExitLock();
                }
                if (value != null) CountReceived(1, value.Size);
                return value;
            }
            finally
            {
                EndUse();
            }
        }

        /// <summary>
        /// Read-modify-write under one acquisition of the lock: <paramref name="update"/> gets the latest value (null
        /// when none was written) and returns the value to write, or null to leave the segment as it is. No other
        /// process or thread reads or writes the segment in between. The callback runs on this thread with the lock
        /// held: when it throws, nothing is written and the lock is released; when it reads or writes this segment
        /// (on this thread) it gets SharedMemoryLockReentry instead of waiting for itself; when the process dies
        /// inside it, the next process takes the lock over and finds the previous value intact (the new one is
        /// written only after the callback returned). Returns true when a value was written.
        /// </summary>
        /// <exception cref="IpcException">SharedMemoryLockTimeout, SharedMemoryDamaged, SharedMemoryTooLarge, ChannelClosed.</exception>
        public bool Update(Func<IpcMessage?, IpcMessage?> update, Deadline deadline, CancellationToken cancellationToken)
        {
            if (update == null) throw new ArgumentNullException(nameof(update));
            BeginUse();
            try
            {
                IpcMessage? next;
                EnterLock(deadline, IpcErrorKind.SharedMemoryLockTimeout, cancellationToken);
                try
                {
                    IpcMessage? current = ReadValueLocked();
                    BeginCallerCode();
                    bool reentered;
                    try
                    {
                        next = update(current);
                    }
                    finally
                    {
                        reentered = EndCallerCode();
                    }
                    // The callback asked for this lock again and was refused: whatever it returned, nothing is written.
                    if (reentered) throw ReentryError();
                    if (next == null) return false;
                    CheckFits(next.Payload);
                    // The callback may have taken long: the file may have been truncated meanwhile.
                    Mapping.EnsureIntact();
                    WriteValueLocked(next.Format, next.Payload);
                }
                finally
                {
                    ExitLock();
                }
                CountSent(next.Size);
                return true;
            }
            finally
            {
                EndUse();
            }
        }

        private void CheckFits(byte[] payload)
        {
            if (payload.LongLength > Capacity)
            {
                throw new IpcException(IpcErrorKind.SharedMemoryTooLarge,
                    $"The value is {payload.LongLength} bytes; the segment '{Name}' holds {Capacity}.", Name);
            }
        }

        private void WriteValueLocked(MessageFormat format, byte[] payload)
        {
            BeginWrite();
            fixed (byte* p = payload) Buffer.MemoryCopy(p, Data, Capacity, payload.Length);
            *(int*)(Header + SegmentHeader.ValueFormatOffset) = (byte)format;
            *(long*)(Header + SegmentHeader.ValueLengthOffset) = payload.Length;
            MarkDamaged(false); // a whole new value replaces whatever a dead writer left
            EndWrite();
        }

        private IpcMessage? ReadValueLocked()
        {
            if ((*(int*)(Header + SegmentHeader.FlagsOffset) & SegmentHeader.FlagDamaged) != 0)
            {
                throw new IpcException(IpcErrorKind.SharedMemoryDamaged,
                    $"The value in '{Name}' may be half-written: a process died while writing it. Write a new value to repair it.", Name);
            }
            uint f = *(uint*)(Header + SegmentHeader.ValueFormatOffset);
            long length = *(long*)(Header + SegmentHeader.ValueLengthOffset);
            if (f == 0) return null;
            if ((f & 0xFFFFFF00) != 0 || !FrameTypes.IsData((FrameType)f) || length < 0 || length > Capacity || length > int.MaxValue - 64)
            {
                throw SegmentStore.Corrupt(Name, Address, $"the value header says {length} bytes of format {f} in a segment of {Capacity}");
            }
            var value = new byte[length];
            fixed (byte* p = value) Buffer.MemoryCopy(Data, p, length, length);
            return new IpcMessage((MessageFormat)f, value, this);
        }

        /// <summary>Writes bytes at an offset of the data area (the value's bytes too, when they overlap).</summary>
        public void WriteBytes(long offset, byte[] bytes, Deadline deadline, CancellationToken cancellationToken)
        {
            if (bytes == null) throw new ArgumentNullException(nameof(bytes));
            CheckRange(offset, bytes.LongLength, "write");
            BeginUse();
            try
            {
                EnterLock(deadline, IpcErrorKind.SharedMemoryLockTimeout, cancellationToken);
                try
                {
                    BeginWrite();
                    fixed (byte* p = bytes) Buffer.MemoryCopy(p, Data + offset, Capacity - offset, bytes.Length);
                    EndWrite();
                }
                finally
                {
                    ExitLock();
                }
                CountSent(bytes.Length);
            }
            finally
            {
                EndUse();
            }
        }

        /// <summary>Reads <paramref name="count"/> bytes at an offset of the data area.</summary>
        public byte[] ReadBytes(long offset, long count, Deadline deadline, CancellationToken cancellationToken)
        {
            CheckRange(offset, count, "read");
            if (count > int.MaxValue - 64) throw new IpcException(IpcErrorKind.SharedMemoryTooLarge, $"Cannot read {count} bytes into one array.", Name);
            var bytes = new byte[count];
            BeginUse();
            try
            {
                EnterLock(deadline, IpcErrorKind.SharedMemoryLockTimeout, cancellationToken);
                try
                {
                    fixed (byte* p = bytes) Buffer.MemoryCopy(Data + offset, p, count, count);
                }
                finally
                {
                    ExitLock();
                }
                CountReceived(1, count);
                return bytes;
            }
            finally
            {
                EndUse();
            }
        }

        private void CheckRange(long offset, long count, string what)
        {
            if (offset < 0 || count < 0 || offset > Capacity || count > Capacity - offset)
            {
                throw new IpcException(IpcErrorKind.SharedMemoryTooLarge,
                    $"Cannot {what} {count} bytes at offset {offset}: the segment '{Name}' holds {Capacity} bytes.", Name);
            }
        }

        private void BeginWrite()
        {
            Volatile.Write(ref Sequence, Sequence + 1); // odd: a write is in progress
        }

        private void EndWrite()
        {
            *(long*)(Header + SegmentHeader.WriteCountOffset) += 1;
            Volatile.Write(ref Sequence, Sequence + 1); // even: done
        }

        private protected override void Repair()
        {
            if ((Volatile.Read(ref Sequence) & 1) != 0)
            {
                // The dead holder was writing: its bytes may be half there.
                MarkDamaged(true);
                Volatile.Write(ref Sequence, Sequence + 1);
            }
        }
    }
}
