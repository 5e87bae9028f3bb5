using System;
using System.Collections.Generic;
using System.Threading;

namespace PsIpc.Handlers
{
    /// <summary>What a request handler keeps of its failures: how many, and the last few.</summary>
    internal sealed class HandlerErrorLog
    {
        private const int Kept = 20;
        private readonly List<Exception> _recent = new List<Exception>();
        private long _count;

        public long Count => Interlocked.Read(ref _count);

        /// <summary>The last few failures, oldest first.</summary>
        public IReadOnlyList<Exception> Recent { get { lock (_recent) return _recent.ToArray(); } }

        public void Record(Exception error)
        {
            Interlocked.Increment(ref _count);
            lock (_recent)
            {
                _recent.Add(error);
                if (_recent.Count > Kept) _recent.RemoveAt(0);
            }
        }
    }
}
