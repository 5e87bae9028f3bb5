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
            using (var timeout = deadline.IsInfinite ? null : new CancellationTokenSource(deadline.RemainingMilliseconds))
            using (var linked = timeout == null
                ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken)
                : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token))
            {
                try
                {
                    return operation(linked.Token).GetAwaiter().GetResult();
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && timeout != null && timeout.IsCancellationRequested)
                {
                    throw new DeadlineExpired();
                }
            }
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
