using System;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport;
using RabbitMQ.Client;

namespace PsIpc.Amqp
{
    /// <summary>
    /// The publisher's calls into the client. The usual call completes at once (the client only queues the
    /// frame), so the publish path allocates no task, timer or token per message; a call that does not
    /// complete at once is waited for with a bound, and cancelled when it stalls.
    /// </summary>
    internal sealed partial class ConfirmingPublisher : IDisposable
    {
        /// <summary>How long one call into the client may take before it counts as stalled (see <see cref="Finish"/>).</summary>
        private static readonly TimeSpan StallTimeout = TimeSpan.FromSeconds(5);

        // Every client call gets _callToken: the caller's token (Ctrl+C) linked with _abandon, which is cancelled
        // (and replaced) when a call stalls. Reused from call to call: no allocation on the publish path.
        private CancellationTokenSource _abandon = new CancellationTokenSource();
        private CancellationTokenSource? _callToken;
        private CancellationToken _callTokenFor;

        /// <summary>Releases the call tokens (after the last Send or Flush; the channel closes the client's channel).</summary>
        public void Dispose()
        {
            lock (_publishLock)
            {
                _callToken?.Dispose();
                _callToken = null;
                _abandon.Dispose();
            }
        }

        private bool NextSequence(Pending pending, Deadline deadline, CancellationToken cancellationToken, out ulong sequence)
        {
            sequence = 0;
            try
            {
                ValueTask<ulong> call = _channel.GetNextPublishSequenceNumberAsync(CallToken(cancellationToken));
                if (call.IsCompletedSuccessfully)
                {
                    sequence = call.Result;
                    return true;
                }
                Task<ulong> task = call.AsTask();
                if (!Finish(task, pending, deadline, cancellationToken)) return false;
                sequence = task.Result;
                return true;
            }
            catch (Exception e) when (AmqpErrors.IsConnectionLoss(e))
            {
                return false;
            }
        }

        /// <returns>False when the message must wait for a reconnect: the connection is gone, or the call stalled.</returns>
        private bool PublishCall(Pending pending, Deadline deadline, CancellationToken cancellationToken)
        {
            try
            {
                ValueTask call = _channel.BasicPublishAsync(_exchange, _routingKey, _mandatory, pending.Properties, pending.Body, CallToken(cancellationToken));
                if (call.IsCompletedSuccessfully)
                {
                    call.GetAwaiter().GetResult(); // releases a pooled ValueTask source
                    return true;
                }
                return Finish(call.AsTask(), pending, deadline, cancellationToken);
            }
            catch (Exception e) when (AmqpErrors.IsConnectionLoss(e))
            {
                return false;
            }
        }

        private CancellationToken CallToken(CancellationToken cancellationToken)
        {
            if (_callToken == null || _callTokenFor != cancellationToken)
            {
                _callToken?.Dispose();
                _callToken = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _abandon.Token);
                _callTokenFor = cancellationToken;
            }
            return _callToken.Token;
        }

        /// <summary>
        /// Waits for a client call that did not complete at once (the usual call does: the client only queues the
        /// frame), bounded by the caller's deadline, the message's and <see cref="StallTimeout"/>. A stalled publish
        /// is what rabbitmq-dotnet-client#1930 (not fixed in 7.2.2) does after a broker restart: it waits for room
        /// in the dead connection's write queue and holds the channel's confirm lock, which in turn holds up the
        /// client's shutdown and recovery. Cancelling it lets the recovery go on.
        /// </summary>
        /// <returns>False when the call stalled and the message must wait for a reconnect.</returns>
        private bool Finish(Task task, Pending pending, Deadline deadline, CancellationToken cancellationToken)
        {
            Deadline publishDeadline = Deadline.Earliest(deadline, DeadlineAt(pending.ExpiresAt));
            Deadline limit = Deadline.Earliest(publishDeadline, Deadline.After(StallTimeout));
            while (!task.IsCompleted)
            {
                int left = limit.RemainingMilliseconds;
                if (left == 0)
                {
                    if (Abandon(task)) break; // it went through after all
                    if (deadline.HasExpired || publishDeadline.HasExpired) throw PublishTimedOut(deadline);
                    Interlocked.Increment(ref _stalls);
                    return false;
                }
                try
                {
                    task.Wait(Math.Min(left, 100), cancellationToken); // Ctrl+C: OperationCanceledException; the call is cancelled too
                }
                catch (AggregateException)
                {
                    break; // completed with an error: GetResult below throws it as it is
                }
                WaitObserver.Waiting(); // a caller showing progress hears of the wait (no lock but _publishLock is held)
            }
            task.GetAwaiter().GetResult();
            return true;
        }

        /// <summary>Cancels a stalled call and starts a new abandon token; true when the call completed anyway.</summary>
        private bool Abandon(Task task)
        {
            _abandon.Cancel();
            try { task.Wait(TimeSpan.FromSeconds(1)); }
            catch (AggregateException) { } // cancelled, as asked
            _callToken?.Dispose();
            _callToken = null;
            _abandon.Dispose();
            _abandon = new CancellationTokenSource();
            return task.Status == TaskStatus.RanToCompletion;
        }

        private IpcException PublishTimedOut(Deadline deadline) => deadline.HasExpired
            ? new IpcException(IpcErrorKind.SendTimeout, $"Timed out publishing to '{_target}' (the client did not take the message).", _target)
            : new IpcException(IpcErrorKind.PublishNotConfirmed,
                $"A message to '{_target}' could not be published within {_timeout.TotalSeconds} s (the broker may be unreachable or blocking publishers).", _target);
    }
}
