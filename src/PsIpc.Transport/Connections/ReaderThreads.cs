using System;
using System.Collections.Generic;
using System.Threading;

namespace PsIpc.Transport.Connections
{
    /// <summary>
    /// Dedicated threads for blocking read loops (a connection's reader, a UDP client's receiver), kept after their
    /// loop ended and given the next one: a process that connects and closes all day (the soak's churn: a client per
    /// cycle; a server's first few connections each) starts a thread only when none is idle, instead of one per
    /// connection. Each thread start costs more than its stack: glibc gives threads malloc arenas of their own, and
    /// memory freed into an arena stays with it, so a stream of short-lived threads grows the process (MALLOC_ARENA_MAX=2
    /// made the soak's servers flat). At most <see cref="MaxIdle"/> threads wait, each at most <see cref="IdleLifetime"/>;
    /// a loop never waits for a free thread (there is no upper bound on busy ones: a read loop may block for hours).
    /// </summary>
    internal static class ReaderThreads
    {
        /// <summary>Threads kept waiting for a loop at most; more that finish end.</summary>
        internal const int MaxIdle = 32;

        /// <summary>How long an idle thread waits for another loop before it ends.</summary>
        internal static readonly TimeSpan IdleLifetime = TimeSpan.FromSeconds(60);

        private const int StackSize = 256 * 1024;
        private static readonly object s_gate = new object();
        private static readonly LinkedList<Worker> s_idle = new LinkedList<Worker>();
        private static long s_started, s_parked;

        /// <summary>Threads started so far (a test sees reuse as a count that stays put).</summary>
        internal static long Started => Interlocked.Read(ref s_started);

        /// <summary>How many times a thread went idle after a loop (a test waits on it before the next loop).</summary>
        internal static long Parked => Interlocked.Read(ref s_parked);

        /// <summary>Threads waiting for a loop now.</summary>
        internal static int Idle
        {
            get { lock (s_gate) return s_idle.Count; }
        }

        /// <summary>Runs <paramref name="loop"/> on an idle reader thread, or on a new one when none is idle. Returns at once.</summary>
        /// <remarks>An exception escaping the loop ends the process, as on a thread of its own: loops catch what they expect.</remarks>
        public static void Run(Action loop)
        {
            Worker? idle = null;
            lock (s_gate)
            {
                LinkedListNode<Worker>? last = s_idle.Last;
                if (last != null)
                {
                    s_idle.RemoveLast(); // the most recently idle: the others age out
                    idle = last.Value;
                }
            }
            if (idle != null)
            {
                idle.Give(loop);
                return;
            }
            var worker = new Worker(loop);
            var thread = new Thread(worker.Serve, StackSize) { IsBackground = true, Name = "PsIpc reader" };
            Interlocked.Increment(ref s_started);
            thread.Start();
        }

        private sealed class Worker
        {
            private readonly LinkedListNode<Worker> _node;
            private readonly object _wake = new object();
            private Action? _loop;

            public Worker(Action first)
            {
                _node = new LinkedListNode<Worker>(this);
                _loop = first;
            }

            public void Give(Action loop)
            {
                lock (_wake)
                {
                    _loop = loop;
                    Monitor.Pulse(_wake);
                }
            }

            public void Serve()
            {
                while (true)
                {
                    Action loop;
                    lock (_wake)
                    {
                        loop = _loop!;
                        _loop = null;
                    }
                    loop();
                    if (!WaitForNext()) return;
                }
            }

            // Parks the thread; false when it should end (enough threads idle, or none came for IdleLifetime).
            private bool WaitForNext()
            {
                lock (s_gate)
                {
                    if (s_idle.Count >= MaxIdle) return false;
                    s_idle.AddLast(_node);
                }
                Interlocked.Increment(ref s_parked);
                lock (_wake)
                {
                    while (_loop == null)
                    {
                        if (Monitor.Wait(_wake, IdleLifetime)) continue;
                        lock (s_gate)
                        {
                            // Still idle: nobody took this thread, so it may end. Otherwise Run took it and Give is coming.
                            if (_node.List != null)
                            {
                                s_idle.Remove(_node);
                                return false;
                            }
                        }
                    }
                    return true;
                }
            }
        }
    }
}
