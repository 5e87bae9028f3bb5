using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// A shared memory segment mapped into this process: a <see cref="SharedMemorySegment"/> (bytes and a latest
    /// value under a lock) or a <see cref="SharedMemoryQueue"/> (a message ring Send/Receive use). Both are
    /// channels, so Get-IpcChannel lists them, Close-IpcChannel unmaps them and a runspace that ends closes them.
    /// Closing unmaps; the segment itself lives on until Remove-SharedMemory deletes its name.
    /// </summary>
    public abstract unsafe class SharedMemoryChannel : IpcChannel
    {
        private static readonly int s_pid = Process.GetCurrentProcess().Id;

        private readonly SharedMapping _mapping;
        private readonly CancellationTokenSource _closing = new CancellationTokenSource();
        private readonly ManualResetEventSlim _idle = new ManualResetEventSlim(false);
        private int _users;
        private SharedLock _lock;

        private protected SharedMemoryChannel(string name, ChannelKind kind, bool created, SharedMapping mapping, long capacity, ChannelOptions? options)
            : base(name, kind, created ? ChannelRole.Server : ChannelRole.Client, options)
        {
            _mapping = mapping;
            Capacity = capacity;
            Header = mapping.Pointer;
            _lock = new SharedLock(mapping, s_pid);
            IsCreator = created;
        }

        /// <summary>Creates a new segment or queue of <paramref name="capacity"/> data bytes (a queue's is rounded up to a multiple of 8).</summary>
        public static SharedMemoryChannel Create(string name, long capacity, bool queue, ChannelOptions? options = null)
        {
            if (queue) capacity = (capacity + 7) & ~7L;
            if (capacity < SegmentHeader.MinCapacity || capacity > SegmentHeader.MaxCapacity)
            {
                throw new IpcException(IpcErrorKind.SharedMemoryTooLarge,
                    $"A shared memory size must be {SegmentHeader.MinCapacity} bytes to 1 TiB; {capacity} is not.", name);
            }
            SharedMemoryKind kind = queue ? SharedMemoryKind.Queue : SharedMemoryKind.Segment;
            SharedMapping mapping = SegmentStore.Create(name, kind, capacity);
            return queue ? (SharedMemoryChannel)new SharedMemoryQueue(name, true, mapping, capacity, options)
                         : new SharedMemorySegment(name, true, mapping, capacity, options);
        }

        /// <summary>Opens an existing segment or queue by name; which one it is comes from its header.</summary>
        public static SharedMemoryChannel Open(string name, ChannelOptions? options = null)
        {
            SharedMapping mapping = SegmentStore.Open(name, out SharedMemoryKind kind, out long capacity);
            return kind == SharedMemoryKind.Queue ? (SharedMemoryChannel)new SharedMemoryQueue(name, false, mapping, capacity, options)
                                                  : new SharedMemorySegment(name, false, mapping, capacity, options);
        }

        /// <summary>Deletes a segment's name; processes that have it open keep it until they close it.</summary>
        public static void Remove(string name) => SegmentStore.Remove(name);

        /// <summary>Where a segment of this name lives: its file (Unix) or map name (Windows).</summary>
        public static string PathOf(string name) => SegmentStore.PathOf(name);

        /// <summary>Bytes of the data area (after the 128-byte header).</summary>
        public long Capacity { get; }

        public abstract SharedMemoryKind SegmentKind { get; }

        /// <summary>True for the process that created the segment.</summary>
        public bool IsCreator { get; }

        public override string Address => _mapping.Address;

        public override ChannelState State => IsClosed ? ChannelState.Closed : ChannelState.Connected;

        /// <summary>Unknown for shared memory (any process of the user may map it): always 0.</summary>
        public override int PeerCount => 0;

        /// <summary>Holder of the lock right now (a process id), 0 when free.</summary>
        public int LockHolder => WhileMapped(() => _lock.Holder);

        /// <summary>How often a process took over the lock of a holder that had died.</summary>
        public int LockRecoveries => WhileMapped(() => _lock.Recoveries);

        /// <summary>True when a writer died in the middle of a write (see Read-SharedMemory).</summary>
        public bool IsDamaged => WhileMapped(() => (Volatile.Read(ref *(int*)(Header + SegmentHeader.FlagsOffset)) & SegmentHeader.FlagDamaged) != 0);

        private protected byte* Header { get; }

        private protected byte* Data => Header + SegmentHeader.Size;

        /// <summary>Cancelled when the channel closes: wakes this process's waits on the segment.</summary>
        private protected CancellationToken ClosingToken => _closing.Token;

        public override void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            // Writes go straight into the mapping: nothing is ever pending.
        }

        public override bool CanSend => false;

        public override bool CanReceive => false;

        /// <summary>Shared memory is mapped only by processes of this user (0600 in a 0700 directory).</summary>
        public override bool IsAuthenticated => true;

        /// <summary>
        /// Neither a segment nor a queue can make requests. A queue is one ring that every process of it sends into and
        /// receives from, so a request's "reply" would be the next message in the ring: the request itself, or a message
        /// meant for another consumer.
        /// </summary>
        public override bool CanRequest => false;

        public override IpcException NotSupportedError(ChannelOperation operation)
        {
            if (operation == ChannelOperation.Request && CanSend && CanReceive)
            {
                return new IpcException(IpcErrorKind.OperationNotSupported,
                    $"'{Name}' is a shared memory queue: one ring that both ends send into and receive from, so the reply to a request would be " +
                    "the next message in the ring (the request itself) rather than an answer. Nothing was sent. For request/reply use a pipe " +
                    "(New-IpcPipe) or a socket (Start-IpcSocketServer, Connect-IpcSocket), or two queues, one each way: send requests on one " +
                    "and receive replies from the other.", Name);
            }
            return new IpcException(IpcErrorKind.SharedMemoryNotQueue, operation == ChannelOperation.Receive
                ? $"'{Name}' is a shared memory segment, not a queue: read it with Read-SharedMemory, or create a queue with New-SharedMemory -Queue."
                : $"'{Name}' is a shared memory segment, not a queue: write it with Write-SharedMemory, or create a queue with New-SharedMemory -Queue.", Name);
        }

        /// <summary>Marks the start of an operation on the mapping, which Close waits for before unmapping.</summary>
        private protected void BeginUse()
        {
            Interlocked.Increment(ref _users);
            if (IsClosed)
            {
                EndUse();
                throw ClosedError();
            }
        }

        private protected void EndUse()
        {
            if (Interlocked.Decrement(ref _users) == 0 && IsClosed) _idle.Set();
        }

        /// <summary>
        /// Reads a value from the mapping for a property (a table view may format a channel that another
        /// thread is closing, or whose file another process truncated): the default once closed or truncated,
        /// never a read of unmapped memory or beyond the end of the file.
        /// </summary>
        private protected T WhileMapped<T>(Func<T> read) where T : struct
        {
            Interlocked.Increment(ref _users);
            try
            {
                return IsClosed || !_mapping.IsIntact ? default(T) : read();
            }
            finally
            {
                EndUse();
            }
        }

        /// <summary>
        /// Takes the segment's lock. A lock left by a process that died is taken over and <see cref="Repair"/> runs
        /// first. On timeout throws <paramref name="timeoutKind"/>; throws ChannelClosed when this channel closes.
        /// </summary>
        private protected void EnterLock(Deadline deadline, IpcErrorKind timeoutKind, CancellationToken cancellationToken)
        {
            // A thread that runs caller code with the lock held (an update's callback) and asks for the same
            // segment's lock again would wait for itself: the lock word holds a pid, not a thread.
            if (s_updating != null && s_updating.Contains(Address))
            {
                s_reentered = Address; // the update fails even when its caller's code goes on after this error
                throw ReentryError();
            }
            // The lock word is in the mapping: first make sure the file still covers it (and the data after it).
            _mapping.EnsureIntact();
            // The common case, a free lock, costs one compare-and-swap: no linked token source per message.
            if (_lock.TryEnterNow()) return;
            bool entered, recovered;
            CancellationTokenSource? linked = cancellationToken.CanBeCanceled
                ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token)
                : null;
            try
            {
                while (true)
                {
                    try
                    {
                        // In slices of a second when the caller shows progress (WaitObserver); else one wait.
                        entered = _lock.TryEnter(WaitObserver.Slice(deadline), linked?.Token ?? _closing.Token, out recovered);
                    }
                    catch (OperationCanceledException) when (linked != null && !cancellationToken.IsCancellationRequested)
                    {
                        throw ClosedError();
                    }
                    if (entered || deadline.HasExpired) break;
                    WaitObserver.Waiting();
                }
            }
            finally
            {
                linked?.Dispose();
            }
            if (!entered)
            {
                string holder = _lock.Holder != 0 ? $" (held by process {_lock.Holder})" : string.Empty;
                throw new IpcException(timeoutKind, $"Timed out waiting for the lock of '{Name}'{holder}.", Name);
            }
            if (recovered)
            {
                try { Repair(); }
                catch { _lock.Exit(); throw; }
            }
        }

        private protected void ExitLock() => _lock.Exit();

        // The segments (by file) whose lock this thread holds while caller code runs; null on threads that never did.
        [ThreadStatic]
        private static List<string>? s_updating;

        // The segment whose lock this thread asked for again while holding it (see EnterLock); null otherwise.
        [ThreadStatic]
        private static string? s_reentered;

        /// <summary>Marks this thread as running caller code with the lock held (see <see cref="EnterLock"/>).</summary>
        private protected void BeginCallerCode()
        {
            if (s_updating == null) s_updating = new List<string>(1);
            s_updating.Add(Address);
            if (s_reentered == Address) s_reentered = null;
        }

        /// <summary>Ends <see cref="BeginCallerCode"/>; true when the caller's code asked for this lock again meanwhile.</summary>
        private protected bool EndCallerCode()
        {
            s_updating?.Remove(Address);
            if (s_reentered != Address) return false;
            s_reentered = null;
            return true;
        }

        private protected IpcException ReentryError() =>
            new IpcException(IpcErrorKind.SharedMemoryLockReentry,
                $"This thread already holds the lock of '{Name}' (it is inside an update of it): reading or writing the segment here would wait for itself. " +
                "Work on the value the update was given and return the new one.", Name);

        /// <summary>The mapping, for checks that its file was not truncated after a wait.</summary>
        private protected SharedMapping Mapping => _mapping;

        /// <summary>Runs with the lock held after it was taken over from a dead holder: make the data consistent or mark it damaged.</summary>
        private protected abstract void Repair();

        private protected void MarkDamaged(bool damaged)
        {
            int* flags = (int*)(Header + SegmentHeader.FlagsOffset);
            if (damaged) *flags |= (int)SegmentHeader.FlagDamaged;
            else *flags &= ~(int)SegmentHeader.FlagDamaged;
        }

        protected override void CloseCore(Deadline deadline)
        {
            _closing.Cancel();
            WakeWaiters();
            // Unmap only when no operation of this process uses the mapping any more; one that does not end
            // in time keeps the mapping (a leak) rather than touching unmapped memory.
            int patience = deadline.IsInfinite ? 5000 : Math.Max(deadline.RemainingMilliseconds, 100);
            if (Volatile.Read(ref _users) == 0 || _idle.Wait(patience))
            {
                _mapping.Dispose();
            }
        }

        private protected virtual void WakeWaiters()
        {
        }

        protected override int ReceiveCore(List<IpcMessage> into, int max, Deadline deadline, CancellationToken cancellationToken) =>
            throw NotSupportedError(ChannelOperation.Receive);

        protected override void SendCore(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken) =>
            throw NotSupportedError(ChannelOperation.Send);

        private protected IpcException IsQueueError() =>
            new IpcException(IpcErrorKind.SharedMemoryIsQueue,
                $"'{Name}' is a shared memory queue: use Send-IpcMessage and Receive-IpcMessage with it, not Read-/Write-SharedMemory.", Name);
    }
}
