using System;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport;

namespace PsIpc.Amqp
{
    /// <summary>
    /// Runs RabbitMQ.Client's asynchronous calls on the caller's thread, bounded by a deadline and the
    /// caller's token (Ctrl+C): the client's own timeouts are long, and a publish after a broker restart
    /// can hang for minutes (rabbitmq-dotnet-client#1930), so no call is made without both.
    /// PowerShell's pipeline thread has no SynchronizationContext, so blocking on the task cannot deadlock.
    /// </summary>
    internal static class Waits
    {
        /// <summary>Thrown inside <see cref="Run{T}"/> when the deadline passed (not the caller's token).</summary>
        internal sealed class DeadlineExpired : Exception
        {
        }

        public static T Run<T>(Func<CancellationToken, Task<T>> operation, Deadline deadline, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (deadline.HasExpired) throw new DeadlineExpired();
            CancellationTokenSource? timeout = deadline.IsInfinite ? null : new CancellationTokenSource(deadline.RemainingMilliseconds);
            CancellationTokenSource linked = timeout == null
                ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken)
                : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            Task<T>? task = null;
            try
            {
                task = operation(linked.Token);
                // The token is the client's to honour, and a call stuck behind a lock that a dead connection's write
                // loop holds does not (rabbitmq-dotnet-client#1930: publishes, channel closes and opens wait on it):
                // the caller waits for the task itself, up to the deadline, and leaves it behind after that. At the
                // deadline the token fires too, and a call that honours it ends within moments: a short grace.
                if (!task.IsCompleted && !Finishes(task, deadline, cancellationToken) && !Finishes(task, Deadline.After(CancelGrace), cancellationToken))
                {
                    Abandoned(task);
                    throw new DeadlineExpired();
                }
                return task.GetAwaiter().GetResult();
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && timeout != null && timeout.IsCancellationRequested)
            {
                throw new DeadlineExpired();
            }
            finally
            {
                // A call left running (past its deadline, or on Ctrl+C) may still register on the token: its sources are
                // then left to the collector rather than disposed under it.
                if (task == null || task.IsCompleted)
                {
                    linked.Dispose();
                    timeout?.Dispose();
                }
            }
        }

        /// <summary>Calls the client left running after their deadline (they stalled and ignored the cancellation).</summary>
        public static long AbandonedCalls => Interlocked.Read(ref s_abandoned);

        private static long s_abandoned;
        private static readonly TimeSpan CancelGrace = TimeSpan.FromMilliseconds(250);

        // True when the task completed (in any way) before the deadline; Ctrl+C throws OperationCanceledException.
        private static bool Finishes(Task task, Deadline deadline, CancellationToken cancellationToken)
        {
            try
            {
                return task.Wait(deadline.RemainingMilliseconds, cancellationToken);
            }
            catch (AggregateException)
            {
                return true; // completed with an error: GetResult throws it as it is
            }
        }

        private static void Abandoned(Task task)
        {
            Interlocked.Increment(ref s_abandoned);
            // Its eventual failure is nobody's business any more: observed here, never an unobserved task exception.
            _ = task.ContinueWith(t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        public static void Run(Func<CancellationToken, Task> operation, Deadline deadline, CancellationToken cancellationToken) =>
            Run(async token =>
            {
                await operation(token).ConfigureAwait(false);
                return true;
            }, deadline, cancellationToken);

        public static void Run(Func<CancellationToken, ValueTask> operation, Deadline deadline, CancellationToken cancellationToken) =>
            Run(token => operation(token).AsTask(), deadline, cancellationToken);

        /// <summary>Waits on a monitor already held, up to the deadline, in slices short enough to notice the token.</summary>
        /// <returns>False when the deadline passed.</returns>
        public static bool Wait(object gate, Deadline deadline, CancellationToken cancellationToken, int sliceMilliseconds = 100)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int left = deadline.RemainingMilliseconds;
            if (left == 0) return false;
            int slice = left < 0 ? sliceMilliseconds : Math.Min(left, sliceMilliseconds);
            Monitor.Wait(gate, slice);
            cancellationToken.ThrowIfCancellationRequested();
            return true;
        }
    }
}
