using System;
using System.Collections.Generic;
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

        private readonly SharedRing _ring;

        internal SharedMemoryQueue(string name, bool created, SharedMapping mapping, long capacity, ChannelOptions options)
            : base(name, "Queue", created, mapping, capacity, options)
        {
            _ring = new SharedRing(mapping.Pointer, capacity, name);
        }

        public override SharedMemoryKind SegmentKind => SharedMemoryKind.Queue;

        /// <summary>Messages in the queue right now.</summary>
        public long Count => WhileMapped(() => _ring.Count);

        /// <summary>Bytes the queued records take (headers and padding included).</summary>
        public long UsedBytes => WhileMapped(() => _ring.UsedBytes);

        /// <summary>The largest message the ring can hold.</summary>
        public long MaxMessageSize => Math.Min(_ring.MaxPayload, Options.MaxMessageSize);

        internal override void SendCore(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken)
        {
            byte[] payload = frame.Payload;
            if (payload.Length > MaxMessageSize)
            {
                throw new IpcException(IpcErrorKind.MessageTooLarge,
                    $"The message is {payload.Length} bytes; the queue '{Name}' takes at most {MaxMessageSize}.", Name);
            }
            BeginUse();
            try
            {
                while (true)
                {
                    EnterLock(deadline, cancellationToken, IpcErrorKind.SendTimeout);
                    bool written, wakeConsumers = false;
                    int signal = 0;
                    try
                    {
                        written = _ring.TryWrite((MessageFormat)frame.Type, payload);
                        if (written) wakeConsumers = Volatile.Read(ref *_ring.ConsumersWaiting) > 0;
                        else
                        {
                            Interlocked.Increment(ref *_ring.ProducersWaiting);
                            signal = Volatile.Read(ref *_ring.SpaceSignal);
                        }
                    }
                    finally
                    {
                        ExitLock();
                    }
                    if (written)
                    {
                        if (wakeConsumers) SharedWait.WakeAll(_ring.DataSignal);
                        CountSent(payload.Length);
                        return;
                    }
                    try
                    {
                        SleepUntilChanged(_ring.SpaceSignal, signal, deadline, cancellationToken);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref *_ring.ProducersWaiting);
                    }
                    if (IsClosed) throw ClosedError();
                    if (deadline.HasExpired)
                    {
                        throw new IpcException(IpcErrorKind.SendTimeout,
                            $"Timed out: the queue '{Name}' stayed full ({_ring.Count} messages, {_ring.UsedBytes} of {Capacity} bytes).", Name);
                    }
                }
            }
            finally
            {
                EndUse();
            }
        }

        public override int Receive(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            ThrowIfClosed();
            int returned = TakeReturned(into, max);
            if (returned > 0) return returned;
            // One message per call: a batch taken from the shared ring but not delivered (Select-Object -First,
            // Ctrl+C) could only go back to this process's list, out of reach of the other consumers, and
            // a big batch would also starve them. The ring read is per message anyway.
            max = Math.Min(max, 1);
            BeginUse();
            try
            {
                while (true)
                {
                    try
                    {
                        EnterLock(deadline, cancellationToken, IpcErrorKind.ReceiveTimeout);
                    }
                    catch (IpcException e) when (e.Kind == IpcErrorKind.ReceiveTimeout)
                    {
                        return 0; // the caller reports the timeout, as for every channel
                    }
                    int taken;
                    long bytes;
                    bool wakeProducers = false;
                    int signal = 0;
                    try
                    {
                        taken = _ring.Read(into, max, ReceiveBatchBytes, this, out bytes);
                        if (taken > 0) wakeProducers = Volatile.Read(ref *_ring.ProducersWaiting) > 0;
                        else
                        {
                            Interlocked.Increment(ref *_ring.ConsumersWaiting);
                            signal = Volatile.Read(ref *_ring.DataSignal);
                        }
                    }
                    finally
                    {
                        ExitLock();
                    }
                    if (taken > 0)
                    {
                        if (wakeProducers) SharedWait.WakeAll(_ring.SpaceSignal);
                        CountReceived(taken, bytes);
                        return taken;
                    }
                    try
                    {
                        SleepUntilChanged(_ring.DataSignal, signal, deadline, cancellationToken);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref *_ring.ConsumersWaiting);
                    }
                    if (IsClosed) throw ClosedError();
                    if (deadline.HasExpired) return 0;
                }
            }
            finally
            {
                EndUse();
            }
        }

        private void SleepUntilChanged(int* word, int seen, Deadline deadline, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int remaining = deadline.RemainingMilliseconds;
            if (remaining == 0) return;
            int slice = remaining < 0 || remaining > SafetySliceMilliseconds ? SafetySliceMilliseconds : remaining;
            SharedWait.Wait(word, seen, slice, cancellationToken);
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
            string problem = _ring.CheckInvariants();
            if (problem != null)
            {
                MarkDamaged(true);
                throw new IpcException(IpcErrorKind.SharedMemoryCorrupt, $"The queue '{Name}' is corrupt: {problem}. Remove it and create it again.", Name);
            }
        }
    }
}
