using System;
using System.Threading;
using System.Threading.Tasks;
using RabbitMQ.Client;

namespace PsIpc.Amqp
{
    /// <summary>
    /// Settles deliveries with the broker. Acknowledgements are batched: Receive-IpcMessage acknowledges
    /// each message once the pipeline has it, and one basic.ack with multiple=true then covers every written
    /// message up to the highest tag. A batch goes out when it reaches half the prefetch (so the broker
    /// refills before the consumer runs dry), when the next Receive finds nothing ready, when a message is settled
    /// otherwise, at close, or 20 ms after its first message (a consumer that stops receiving does not sit
    /// on acknowledgements). An acknowledgement is never sent before its message was written.
    ///
    /// A multiple ack covers every unacknowledged delivery up to its tag. That is right because the channel
    /// writes deliveries in tag order and settles the others at once (nack, reject), except for a delivery
    /// kept unacknowledged on purpose (undecodable, no dead-letter queue): after one, acks go one by one.
    /// Everything is sent under one lock: two multiple acks crossing each other would ack a tag twice,
    /// which the broker answers by closing the channel.
    /// </summary>
    internal sealed class Acknowledgements : IDisposable
    {
        private static readonly TimeSpan FlushDelay = TimeSpan.FromMilliseconds(20);
        private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(10);

        private readonly object _gate = new object();
        private readonly IChannel _channel;
        private readonly Func<long> _generation;
        private readonly int _batch;
        private readonly Timer _timer;
        // Given to every call; cancelled (and replaced) when one stalls, so no call allocates a token or timer.
        private CancellationTokenSource _stall = new CancellationTokenSource();
        private ulong _highest;
        private long _pendingGeneration, _oneByOneGeneration = -1;
        private int _pending;
        private bool _timerArmed, _disposed;

        public Acknowledgements(IChannel channel, Func<long> currentGeneration, int prefetch)
        {
            _channel = channel;
            _generation = currentGeneration;
            _batch = Math.Max(1, prefetch / 2);
            _timer = new Timer(_ =>
            {
                try { Flush(); }
                catch (Exception) { } // a timer thread must never throw: it would end the user's process
            }, null, Timeout.Infinite, Timeout.Infinite);
        }

        /// <summary>The message was written to the pipeline.</summary>
        public void Ack(DeliveryToken token)
        {
            lock (_gate)
            {
                if (_disposed || token.Generation != _generation()) return; // void: the broker requeued it
                if (_oneByOneGeneration == token.Generation)
                {
                    Send(t => _channel.BasicAckAsync(token.Tag, multiple: false, t));
                    return;
                }
                if (_pending > 0 && _pendingGeneration != token.Generation) _pending = 0;
                _highest = _pending == 0 ? token.Tag : Math.Max(_highest, token.Tag);
                _pendingGeneration = token.Generation;
                _pending++;
                if (_pending >= _batch)
                {
                    FlushLocked();
                }
                else if (!_timerArmed)
                {
                    _timerArmed = true;
                    _timer.Change(FlushDelay, Timeout.InfiniteTimeSpan);
                }
            }
        }

        /// <summary>Taken but not written: back to the queue.</summary>
        public void Requeue(DeliveryToken token) =>
            Settle(token, t => _channel.BasicNackAsync(token.Tag, multiple: false, requeue: true, t));

        /// <summary>Undecodable, with a dead-letter route: the broker moves it there.</summary>
        public void DeadLetter(DeliveryToken token) =>
            Settle(token, t => _channel.BasicRejectAsync(token.Tag, requeue: false, t));

        /// <summary>Undecodable, no dead-letter route: left unacknowledged (the broker keeps it); acks go one by one from now on.</summary>
        public void Keep(DeliveryToken token)
        {
            lock (_gate)
            {
                if (_disposed || token.Generation != _generation()) return;
                FlushLocked();
                _oneByOneGeneration = token.Generation;
            }
        }

        /// <summary>Sends the acknowledgements waiting in the batch.</summary>
        public void Flush()
        {
            lock (_gate)
            {
                if (!_disposed) FlushLocked();
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                if (_disposed) return;
                FlushLocked();
                _disposed = true;
            }
            _timer.Dispose();
            lock (_gate) _stall.Dispose();
        }

        private void Settle(DeliveryToken token, Func<CancellationToken, ValueTask> settle)
        {
            lock (_gate)
            {
                if (_disposed || token.Generation != _generation()) return;
                FlushLocked(); // earlier acks first: they are lower tags
                Send(settle);
            }
        }

        private void FlushLocked()
        {
            _timerArmed = false;
            if (_pending == 0) return;
            _pending = 0;
            if (_pendingGeneration != _generation()) return;
            ulong tag = _highest;
            Send(t => _channel.BasicAckAsync(tag, multiple: true, t));
        }

        /// <summary>
        /// Hands one frame to the client (it usually completes at once: the client only queues it). A lost connection
        /// voids it, and so does a send that stalls (the dead connection's write queue after a broker restart): the
        /// broker requeued those deliveries anyway. Called under the lock.
        /// </summary>
        private void Send(Func<CancellationToken, ValueTask> send)
        {
            try
            {
                ValueTask call = send(_stall.Token);
                if (call.IsCompleted)
                {
                    call.GetAwaiter().GetResult();
                    return;
                }
                Task task = call.AsTask();
                bool done;
                try { done = task.Wait(SendTimeout); }
                catch (AggregateException) { done = true; } // GetResult below throws the error itself
                if (done)
                {
                    task.GetAwaiter().GetResult();
                    return;
                }
                _stall.Cancel();
                _stall.Dispose();
                _stall = new CancellationTokenSource();
            }
            catch (Exception e) when (AmqpErrors.IsConnectionLoss(e) || e is OperationCanceledException)
            {
                // Lost with the connection: the broker delivers the message again, as it does for anything unacknowledged.
            }
        }
    }
}
