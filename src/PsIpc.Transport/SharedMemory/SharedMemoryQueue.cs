using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// A queue: a <see cref="SharedRing"/> in a segment that any number of processes send to and receive from,
    /// through the same Send/Receive as pipes. A full ring blocks the sender up to its deadline (nothing is
    /// dropped); an empty one blocks the receiver. Both sleep on a futex word of the segment (no polling) that the
    /// other side bumps and wakes, in slices of at most <see cref="SafetySliceMilliseconds"/>: a peer killed between
    /// publishing and waking cannot leave a sleeper asleep for longer than that.
    /// Messages never "end": Receive returns when it has messages, at its deadline, or when cancelled.
    /// </summary>
    public sealed unsafe class SharedMemoryQueue : SharedMemoryChannel
    {
        public const int SafetySliceMilliseconds = 1000;
        private const long ReceiveBatchBytes = 4 * 1024 * 1024;
        private const long SpinMicroseconds = 50;

        private readonly SharedRing _ring;
        private int _largeLength; // the length of the last large record this channel found: likely the next one's
        [ThreadStatic] private static byte[][]? t_one; // SendCore's one-message batch, per thread: no allocation per message

        internal SharedMemoryQueue(string name, bool created, SharedMapping mapping, long capacity, ChannelOptions? options)
            : base(name, ChannelKind.Memory, created, mapping, capacity, options)
        {
            _ring = new SharedRing(mapping.Pointer, capacity, name);
        }

        public override SharedMemoryKind SegmentKind => SharedMemoryKind.Queue;

        public override bool CanSend => true;

        public override bool CanReceive => true;

        /// <summary>Messages in the queue right now.</summary>
        public long Count => WhileMapped(() => _ring.Count);

        /// <summary>Bytes the queued records take (headers and padding included).</summary>
        public long UsedBytes => WhileMapped(() => _ring.UsedBytes);

        /// <summary>The largest message the ring can hold.</summary>
        public long MaxMessageSize => Math.Min(_ring.MaxPayload, Options.MaxMessageSize);

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var frame = new OutgoingFrame((PsIpc.Transport.Framing.FrameType)format, payload);
            byte[][] one = t_one ?? (t_one = new byte[1][]);
            one[0] = frame.Payload;
            try
            {
                SendMany((MessageFormat)frame.Type, one, deadline, cancellationToken);
            }
            finally
            {
                one[0] = Array.Empty<byte>(); // do not keep the payload alive
            }
        }

        /// <summary>
        /// Sends <paramref name="payloads"/> in order, each one message: as many as fit are written under one
        /// acquisition of the lock and published together, so a batch costs one lock and at most one wake-up
        /// instead of one per message. A full ring blocks until a receiver makes room or the deadline passes; a
        /// timeout leaves the messages sent so far in the queue (<see cref="IpcChannel.MessagesSent"/> counts them).
        /// </summary>
        /// <exception cref="IpcException">MessageTooLarge (before anything is sent), SendTimeout, ChannelClosed.</exception>
        public void SendMany(MessageFormat format, IList<byte[]> payloads, Deadline deadline, CancellationToken cancellationToken)
        {
            if (payloads == null) throw new ArgumentNullException(nameof(payloads));
            if (!FrameTypes.IsData((FrameType)format)) throw new ArgumentOutOfRangeException(nameof(format), format, "Not a message format.");
            long maxSize = MaxMessageSize;
            for (int i = 0; i < payloads.Count; i++)
            {
                if (payloads[i] == null) throw new ArgumentNullException(nameof(payloads), $"Message {i} is null.");
                if (payloads[i].Length > maxSize)
                {
                    throw new IpcException(IpcErrorKind.MessageTooLarge,
                        $"The message is {payloads[i].Length} bytes; the queue '{Name}' takes at most {maxSize}.", Name);
                }
            }
            ThrowIfClosed();
            BeginUse();
            try
            {
                int sent = 0;
                while (sent < payloads.Count)
                {
                    EnterLock(deadline, IpcErrorKind.SendTimeout, cancellationToken);
                    int written;
                    bool wakeConsumers;
                    int signal = 0;
                    try
                    {
                        written = _ring.WriteMany(format, payloads, sent, payloads.Count - sent, out wakeConsumers);
                        if (written == 0) signal = _ring.RegisterProducerSleep();
                    }
                    finally
                    {
                        ExitLock();
                    }
                    if (written > 0)
                    {
                        // A futex wake is a system call: only when a consumer went to sleep on the signal's old value.
                        if (wakeConsumers) SharedWait.WakeAll(_ring.DataSignal);
                        long bytes = 0;
                        for (int i = sent; i < sent + written; i++) bytes += payloads[i].Length;
                        CountSent(written, bytes);
                        sent += written;
                        continue;
                    }
                    try
                    {
                        SleepUntilChanged(_ring.SpaceSignal, signal, deadline, cancellationToken);
                    }
                    finally
                    {
                        Awake(_ring.ProducersWaiting);
                    }
                    if (IsClosed) throw ClosedError();
                    if (deadline.HasExpired)
                    {
                        throw new IpcException(IpcErrorKind.SendTimeout,
                            $"Timed out: the queue '{Name}' stayed full ({_ring.Count} messages, {_ring.UsedBytes} of {Capacity} bytes).", Name);
                    }
                    WaitObserver.Waiting(); // the sleep wakes at least every second: a caller may show progress
                }
            }
            finally
            {
                EndUse();
            }
        }

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            ThrowIfClosed();
            int returned = TakeReturned(into, max);
            if (returned > 0) return returned;
            // Up to max messages (and about ReceiveBatchBytes) under one acquisition of the lock. A batch that the
            // caller cannot deliver (Select-Object -First, Ctrl+C) goes back into the ring (ReturnUnreceived), in
            // reach of every consumer.
            BeginUse();
            // A poll (deadline already passed) takes a large record in one go; otherwise its array is made outside the lock.
            var large = new SharedRing.LargeTarget { MayAllocate = deadline.HasExpired };
            try
            {
                // A stream of large messages is mostly of one length: made before the first look, the array usually
                // fits, and one acquisition of the lock takes the record (a miss costs a second one, as below).
                int expected = Volatile.Read(ref _largeLength);
                if (expected > 0 && !large.MayAllocate) large.Array = PayloadArrays.RentTouched(expected);
                bool spun = false, spinNext = false;
                while (true)
                {
                    if (spinNext)
                    {
                        spinNext = false;
                        SpinUntilData();
                    }
                    try
                    {
                        EnterLock(deadline, IpcErrorKind.ReceiveTimeout, cancellationToken);
                    }
                    catch (IpcException e) when (e.Kind == IpcErrorKind.ReceiveTimeout)
                    {
                        return 0; // the caller reports the timeout, as for every channel
                    }
                    int taken;
                    long bytes;
                    bool wakeProducers;
                    SharedRing.Taken copied;
                    int signal = 0;
                    try
                    {
                        taken = _ring.Read(into, max, ReceiveBatchBytes, this, ref large, out bytes, out wakeProducers, out copied);
                        if (taken == 0 && large.Wanted == 0)
                        {
                            // Before the first sleep, a short spin: a producer that is writing right now would
                            // otherwise pay a wake-up (a system call, and a context switch here) every message or two.
                            if (!spun && !deadline.HasExpired) spun = spinNext = true;
                            else signal = _ring.RegisterConsumerSleep();
                        }
                    }
                    finally
                    {
                        ExitLock();
                    }
                    if (spinNext) continue;
                    if (large.Wanted > 0)
                    {
                        Volatile.Write(ref _largeLength, large.Wanted);
                        // A large record and no array of its length: make one now, without the lock, and take it then
                        // (a second miss, another consumer having taken that record, rents under the lock).
                        if (large.Array != null) PayloadArrays.Return(large.Array);
                        large.Array = PayloadArrays.RentTouched(large.Wanted);
                        large.MayAllocate = true;
                        continue;
                    }
                    if (taken > 0)
                    {
                        if (large.Array != null) Volatile.Write(ref _largeLength, 0); // small ones came: stop guessing
                        if (wakeProducers) SharedWait.WakeAll(_ring.SpaceSignal);
                        if (copied.Count > 0) _ring.Unpack(copied, into, this);
                        CountReceived(taken, bytes);
                        return taken;
                    }
                    try
                    {
                        SleepUntilChanged(_ring.DataSignal, signal, deadline, cancellationToken);
                    }
                    finally
                    {
                        Awake(_ring.ConsumersWaiting);
                    }
                    if (IsClosed) throw ClosedError();
                    if (deadline.HasExpired) return 0;
                }
            }
            finally
            {
                if (large.Array != null) PayloadArrays.Return(large.Array); // unused: kept for the next message of its length
                EndUse();
            }
        }

        /// <summary>
        /// Puts messages that Receive handed out but the caller could not deliver back at the head of the shared
        /// ring, where the next receiver of any process takes them first. Only when the ring has filled up since
        /// (no room in front of the head) do they stay in this channel for its next Receive, as for a pipe.
        /// </summary>
        public override void ReturnUnreceived(IList<IpcMessage> messages, int start)
        {
            if (messages == null || start >= messages.Count) return;
            bool unread = false;
            try
            {
                BeginUse();
            }
            catch (IpcException)
            {
                return; // closed: as for every channel, nothing to return to
            }
            try
            {
                EnterLock(Deadline.After(TimeSpan.FromSeconds(5)), IpcErrorKind.ReceiveTimeout, CancellationToken.None);
                bool wake;
                try
                {
                    unread = _ring.TryUnread(messages, start, out wake);
                }
                finally
                {
                    ExitLock();
                }
                if (wake) SharedWait.WakeAll(_ring.DataSignal);
            }
            catch (IpcException)
            {
                // No lock within 5 s or a damaged ring: keep them here rather than lose them.
            }
            finally
            {
                EndUse();
            }
            if (!unread) base.ReturnUnreceived(messages, start);
        }

        /// <summary>
        /// Watches the ring (without the lock) for at most <see cref="SpinMicroseconds"/>; true as soon as it may
        /// have a record. Bounded and done only before a receiver's first sleep: an idle receiver sleeps.
        /// </summary>
        private bool SpinUntilData()
        {
            long end = Stopwatch.GetTimestamp() + Stopwatch.Frequency * SpinMicroseconds / 1000000;
            for (int i = 0; ; i++)
            {
                if (_ring.MayHaveData) return true;
                if (IsClosed || Stopwatch.GetTimestamp() > end) return false;
                if ((i & 7) == 7) Thread.Yield(); // two cores: let the producer run if it shares ours
                else Thread.SpinWait(30);
            }
        }

        /// <summary>
        /// Counts a sleeper out again. A sleep can last up to a second: the file may have been truncated meanwhile,
        /// and then the header is gone (touching it would be SIGBUS), so this throws SharedMemoryTruncated instead.
        /// </summary>
        private void Awake(int* waiting)
        {
            Mapping.EnsureIntact();
            Interlocked.Decrement(ref *waiting);
        }

        private void SleepUntilChanged(int* word, int seen, Deadline deadline, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int remaining = deadline.RemainingMilliseconds;
            if (remaining == 0) return;
            int slice = remaining < 0 || remaining > SafetySliceMilliseconds ? SafetySliceMilliseconds : remaining;
            SharedWait.Wait(word, seen, slice, cancellationToken, Mapping);
            cancellationToken.ThrowIfCancellationRequested();
        }

        private protected override void WakeWaiters()
        {
            // This process's sleepers see the channel closed; other processes' sleepers find nothing new and sleep on.
            SharedWait.WakeAll(_ring.DataSignal);
            SharedWait.WakeAll(_ring.SpaceSignal);
        }

        private protected override void Repair()
        {
            string? problem = _ring.CheckInvariants();
            if (problem != null)
            {
                MarkDamaged(true);
                throw new IpcException(IpcErrorKind.SharedMemoryCorrupt, $"The queue '{Name}' is corrupt: {problem}. Remove it and create it again.", Name);
            }
        }
    }
}
