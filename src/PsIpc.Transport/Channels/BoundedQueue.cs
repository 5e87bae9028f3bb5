using System;
using System.Collections.Generic;
using System.Threading;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// A FIFO bounded by item count and by bytes, with blocking, cancellable, deadline-bound waits on both
    /// ends. This is the back-pressure between a cmdlet on the pipeline thread and a connection's I/O thread.
    /// One item bigger than the byte bound is still accepted when the queue is empty, so a single large
    /// message always fits.
    /// </summary>
    public sealed class BoundedQueue<T>
    {
        private readonly object _gate = new object();
        private readonly Queue<Entry> _items = new Queue<Entry>();
        private readonly int _maxItems;
        private readonly long _maxBytes;
        private long _bytes;
        private bool _completed;
        private int _waitingTakers;
        private int _waitingAdders;
        private System.Threading.Tasks.TaskCompletionSource<bool>? _room; // adders that wait without a thread (AddWhileRoom)

        private struct Entry
        {
            public T Item;
            public long Size;
        }

        public BoundedQueue(int maxItems, long maxBytes)
        {
            _maxItems = maxItems;
            _maxBytes = maxBytes;
        }

        public int Count { get { lock (_gate) return _items.Count; } }

        public long Bytes { get { lock (_gate) return _bytes; } }

        /// <summary>True once <see cref="Complete"/> was called and every item was taken.</summary>
        public bool IsDrained { get { lock (_gate) return _completed && _items.Count == 0; } }

        public bool IsCompleted { get { lock (_gate) return _completed; } }

        /// <summary>Adds an item, waiting for room. False when the deadline passed first.</summary>
        /// <exception cref="InvalidOperationException">The queue was completed.</exception>
        /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
        public bool TryAdd(T item, long size, Deadline deadline, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                while (true)
                {
                    if (_completed) throw new InvalidOperationException("The queue is completed.");
                    if (HasRoomFor(size))
                    {
                        Enqueue(item, size);
                        return true;
                    }
                    if (!Wait(ref _waitingAdders, WaitObserver.Slice(deadline), cancellationToken)) return false;
                    if (WaitObserver.IsObserved)
                    {
                        // Between slices of an observed wait: the observer (progress) runs without our lock.
                        Monitor.Exit(_gate);
                        try { WaitObserver.Waiting(); }
                        finally { Monitor.Enter(_gate); }
                    }
                }
            }
        }

        /// <summary>Adds items in order, waiting for room as needed; returns how many were added.</summary>
        public int TryAddRange(IList<T> items, Func<T, long> sizeOf, Deadline deadline, CancellationToken cancellationToken) =>
            TryAddRange(items, sizeOf, null, deadline, cancellationToken);

        /// <summary>
        /// As above; when it throws (the queue was completed, the token cancelled) after adding only some items,
        /// <paramref name="notAdded"/> is called for each of the others, so that what the caller attached to them
        /// (a share of a receive budget) can be given back.
        /// </summary>
        public int TryAddRange(IList<T> items, Func<T, long> sizeOf, Action<T>? notAdded, Deadline deadline, CancellationToken cancellationToken)
        {
            if (items == null) throw new ArgumentNullException(nameof(items));
            int added = 0;
            bool returned = false;
            try
            {
                lock (_gate)
                {
                    while (added < items.Count)
                    {
                        if (_completed) throw new InvalidOperationException("The queue is completed.");
                        long size = sizeOf(items[added]);
                        if (HasRoomFor(size))
                        {
                            Enqueue(items[added], size);
                            added++;
                            continue;
                        }
                        if (!Wait(ref _waitingAdders, deadline, cancellationToken)) break;
                    }
                }
                returned = true;
                return added;
            }
            finally
            {
                if (!returned && notAdded != null)
                {
                    for (int i = added; i < items.Count; i++) notAdded(items[i]);
                }
            }
        }

        /// <summary>
        /// Adds items from <paramref name="start"/> on, in order, while there is room, without waiting; returns the index of
        /// the first item not added (items.Count: all were). When some were left, <paramref name="room"/> completes once
        /// items were taken or the queue was completed: an adder on the thread pool awaits it instead of blocking a thread.
        /// </summary>
        /// <exception cref="InvalidOperationException">The queue was completed.</exception>
        internal int AddWhileRoom(IList<T> items, int start, Func<T, long> sizeOf, out System.Threading.Tasks.Task? room)
        {
            room = null;
            lock (_gate)
            {
                if (_completed) throw new InvalidOperationException("The queue is completed.");
                while (start < items.Count)
                {
                    long size = sizeOf(items[start]);
                    if (!HasRoomFor(size))
                    {
                        _room ??= new System.Threading.Tasks.TaskCompletionSource<bool>(System.Threading.Tasks.TaskCreationOptions.RunContinuationsAsynchronously);
                        room = _room.Task;
                        break;
                    }
                    Enqueue(items[start], size);
                    start++;
                }
                return start;
            }
        }

        /// <summary>
        /// Takes up to <paramref name="max"/> items into <paramref name="into"/>, waiting for at least one.
        /// Returns the number taken: 0 when the deadline passed, -1 when completed and empty.
        /// </summary>
        public int TakeBatch(List<T> into, int max, Deadline deadline, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                while (_items.Count == 0)
                {
                    if (_completed) return -1;
                    if (!Wait(ref _waitingTakers, deadline, cancellationToken)) return 0;
                }
                int n = 0;
                while (n < max && _items.Count > 0)
                {
                    Entry e = _items.Dequeue();
                    _bytes -= e.Size;
                    into.Add(e.Item);
                    n++;
                }
                if (_waitingAdders > 0) Monitor.PulseAll(_gate);
                SignalRoom();
                return n;
            }
        }

        /// <summary>
        /// Waits until the queue holds an item, without taking it. Returns the count, 0 when the deadline
        /// passed, -1 when completed and empty.
        /// </summary>
        public int WaitForItems(Deadline deadline, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                while (_items.Count == 0)
                {
                    if (_completed) return -1;
                    if (!Wait(ref _waitingTakers, deadline, cancellationToken)) return 0;
                }
                return _items.Count;
            }
        }

        /// <summary>Waits until the queue is empty (everything taken). False when the deadline passed.</summary>
        public bool WaitUntilEmpty(Deadline deadline, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                while (_items.Count > 0)
                {
                    if (!Wait(ref _waitingAdders, deadline, cancellationToken)) return false;
                }
                return true;
            }
        }

        /// <summary>No more items will be added; takers drain what is left and then see -1.</summary>
        public void Complete()
        {
            lock (_gate)
            {
                _completed = true;
                Monitor.PulseAll(_gate);
                SignalRoom();
            }
        }

        /// <summary>Completes the queue and drops what it holds (used when the connection is gone).</summary>
        public List<T> CompleteAndClear()
        {
            lock (_gate)
            {
                _completed = true;
                var left = new List<T>(_items.Count);
                foreach (Entry e in _items) left.Add(e.Item);
                _items.Clear();
                _bytes = 0;
                Monitor.PulseAll(_gate);
                SignalRoom();
                return left;
            }
        }

        // Under the lock. The continuations run on the thread pool (RunContinuationsAsynchronously), not in here.
        private void SignalRoom()
        {
            if (_room == null) return;
            _room.TrySetResult(true);
            _room = null;
        }

        private bool HasRoomFor(long size) =>
            _items.Count == 0 || (_items.Count < _maxItems && _bytes + size <= _maxBytes);

        private void Enqueue(T item, long size)
        {
            _items.Enqueue(new Entry { Item = item, Size = size });
            _bytes += size;
            if (_waitingTakers > 0) Monitor.PulseAll(_gate);
        }

        // Called with the lock held. False when the deadline passed; throws when cancelled.
        private bool Wait(ref int waiters, Deadline deadline, CancellationToken cancellationToken)
        {
            waiters++;
            try
            {
                return GateWait.Wait(_gate, deadline, cancellationToken);
            }
            finally
            {
                waiters--;
            }
        }
    }
}
