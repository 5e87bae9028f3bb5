using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace PsIpc.Amqp
{
    /// <summary>
    /// Publishes persistent messages on one channel with publisher confirms, keeping its own bounded window
    /// of unconfirmed messages (the client's tracking is off: its rate limiter bounds sends, not confirms,
    /// and it cannot republish after a reconnect). Every message carries a deadline for its confirm.
    ///
    /// When the connection drops, the messages still unconfirmed are kept and published again, in their
    /// order, once the client has reconnected: a confirmed message is on the broker; one that was in
    /// flight may arrive twice (at-least-once). Nacked, unroutable and timed-out messages are reported as
    /// PublishNotConfirmed by the next Send or Flush.
    ///
    /// Only the caller's thread publishes (under <see cref="_publishLock"/>); the client's dispatcher thread
    /// only runs the ack/nack/return/shutdown handlers, which take <see cref="_gate"/> briefly. Nothing calls
    /// into the client while holding <see cref="_gate"/>.
    /// </summary>
    internal sealed partial class ConfirmingPublisher
    {
        private sealed class Pending
        {
            public long Order;
            public byte[] Body = Array.Empty<byte>();
            public BasicProperties Properties = NoProperties;
            public long ExpiresAt; // Stopwatch ticks
        }

        private static readonly BasicProperties NoProperties = new BasicProperties();

        private readonly object _publishLock = new object();
        private readonly object _gate = new object();
        private readonly IChannel _channel;
        private readonly bool _confirm;
        private readonly string _exchange, _routingKey, _target;
        private readonly bool _mandatory;
        private readonly int _maxUnconfirmed;
        private readonly TimeSpan _timeout;
        // By publish sequence number; the numbers of one channel rise by one per publish, so a multiple confirm
        // removes the numbers from _lowestUnconfirmed up to its tag.
        private readonly Dictionary<ulong, Pending> _unconfirmed = new Dictionary<ulong, Pending>();
        private readonly SortedList<long, Pending> _resend = new SortedList<long, Pending>();
        // One set of properties per content type, shared by every message (only the publishing thread uses them).
        private readonly Dictionary<string, BasicProperties> _properties = new Dictionary<string, BasicProperties>(StringComparer.Ordinal);
        private ulong _lowestUnconfirmed;
        // No unconfirmed message expires before this (Stopwatch ticks): a lower bound, so that checking for
        // overdue confirms costs nothing per message until one may be overdue.
        private long _earliestExpiry = long.MaxValue;
        private long _nextOrder, _generation, _republished, _stalls;
        private int _nacked, _returned, _expired;
        private string? _returnReason;
        private IpcException? _fatal;

        public ConfirmingPublisher(IConnection connection, IChannel channel, bool confirm, string exchange, string routingKey,
            bool mandatory, int maxUnconfirmed, TimeSpan timeout, string target)
        {
            _channel = channel;
            _confirm = confirm;
            _exchange = exchange;
            _routingKey = routingKey;
            _mandatory = mandatory;
            _maxUnconfirmed = Math.Max(1, maxUnconfirmed);
            _timeout = timeout;
            _target = target;
            channel.BasicAcksAsync += (_, e) => OnConfirm(e.DeliveryTag, e.Multiple, nack: false);
            channel.BasicNacksAsync += (_, e) => OnConfirm(e.DeliveryTag, e.Multiple, nack: true);
            channel.BasicReturnAsync += OnReturn;
            channel.ChannelShutdownAsync += OnShutdown;
            connection.RecoverySucceededAsync += (_, __) =>
            {
                Wake();
                return Task.CompletedTask;
            };
        }

        /// <summary>Messages published again after a reconnect (each may arrive twice).</summary>
        public long Republished => Interlocked.Read(ref _republished);

        /// <summary>Client calls cancelled because they stalled (rabbitmq-dotnet-client#1930), then retried.</summary>
        public long Stalls => Interlocked.Read(ref _stalls);

        /// <summary>Messages published and not yet confirmed, including those waiting for a reconnect.</summary>
        public int Unconfirmed
        {
            get { lock (_gate) return _unconfirmed.Count + _resend.Count; }
        }

        /// <summary>Publishes one message; waits while the window is full (for confirms, or for a reconnect).</summary>
        public void Send(string contentType, byte[] body, Deadline deadline, CancellationToken cancellationToken)
        {
            lock (_publishLock)
            {
                if (!_properties.TryGetValue(contentType, out BasicProperties? properties))
                {
                    properties = new BasicProperties { ContentType = contentType, DeliveryMode = DeliveryModes.Persistent };
                    _properties[contentType] = properties;
                }
                var pending = new Pending
                {
                    Order = _nextOrder++,
                    Body = body,
                    Properties = properties,
                    ExpiresAt = Stopwatch.GetTimestamp() + (long)(_timeout.TotalSeconds * Stopwatch.Frequency),
                };
                if (!_confirm)
                {
                    PublishWithoutConfirm(pending, deadline, cancellationToken);
                    return;
                }
                WaitFor(() => _unconfirmed.Count + _resend.Count < _maxUnconfirmed, IpcErrorKind.SendTimeout,
                    "for the broker to confirm earlier messages", deadline, cancellationToken);
                Publish(pending, deadline, cancellationToken);
            }
        }

        /// <summary>Waits until every message sent so far is confirmed (or reported as not confirmed).</summary>
        public void Flush(Deadline deadline, CancellationToken cancellationToken)
        {
            if (!_confirm) return;
            lock (_publishLock)
            {
                WaitFor(() => _unconfirmed.Count + _resend.Count == 0, IpcErrorKind.FlushTimeout,
                    "for the broker to confirm every message", deadline, cancellationToken);
            }
        }

        /// <summary>
        /// Waits (holding the publish lock) until the condition holds, republishing after a reconnect,
        /// reporting expired confirms and failures as they happen.
        /// </summary>
        private void WaitFor(Func<bool> done, IpcErrorKind timeoutKind, string what, Deadline deadline, CancellationToken cancellationToken)
        {
            while (true)
            {
                List<Pending>? resend = null;
                bool waited = false;
                lock (_gate)
                {
                    ThrowReported();
                    if (_resend.Count > 0 && _channel.IsOpen)
                    {
                        resend = new List<Pending>(_resend.Values);
                        _resend.Clear();
                    }
                    else if (done())
                    {
                        return;
                    }
                    else if (!Waits.Wait(_gate, WaitObserver.Slice(Deadline.Earliest(deadline, OldestExpiry())), cancellationToken))
                    {
                        if (deadline.HasExpired)
                        {
                            throw new IpcException(timeoutKind,
                                $"Timed out waiting {what} on '{_target}' ({_unconfirmed.Count + _resend.Count} not confirmed yet).", _target);
                        }
                        waited = true;
                    }
                    else
                    {
                        waited = true;
                    }
                }
                // A caller showing progress hears of the wait between its slices, without our locks' _gate.
                if (waited) WaitObserver.Waiting();
                if (resend != null)
                {
                    Interlocked.Add(ref _republished, resend.Count);
                    foreach (Pending p in resend) Publish(p, deadline, cancellationToken);
                }
            }
        }

        private void Publish(Pending pending, Deadline deadline, CancellationToken cancellationToken)
        {
            long generation;
            lock (_gate)
            {
                if (!_channel.IsOpen)
                {
                    Resend(pending); // published once the client has reconnected
                    return;
                }
                generation = _generation;
            }
            if (!NextSequence(pending, deadline, cancellationToken, out ulong sequence))
            {
                lock (_gate) Resend(pending);
                return;
            }
            lock (_gate)
            {
                if (generation != _generation)
                {
                    Resend(pending);
                    return;
                }
                // Registered before publishing: the confirm may arrive before BasicPublishAsync returns.
                if (_unconfirmed.Count == 0) _lowestUnconfirmed = sequence;
                _unconfirmed[sequence] = pending;
                NoteExpiry(pending);
            }
            bool published;
            try
            {
                published = PublishCall(pending, deadline, cancellationToken);
            }
            catch (Exception)
            {
                lock (_gate) _unconfirmed.Remove(sequence);
                throw;
            }
            if (!published)
            {
                lock (_gate)
                {
                    // Unless the shutdown handler moved it already.
                    if (_unconfirmed.Remove(sequence)) Resend(pending);
                }
            }
        }

        private void Resend(Pending pending)
        {
            _resend[pending.Order] = pending;
            NoteExpiry(pending);
        }

        private void NoteExpiry(Pending pending) => _earliestExpiry = Math.Min(_earliestExpiry, pending.ExpiresAt);

        private void PublishWithoutConfirm(Pending pending, Deadline deadline, CancellationToken cancellationToken)
        {
            Deadline publishDeadline = Deadline.Earliest(deadline, DeadlineAt(pending.ExpiresAt));
            while (true)
            {
                lock (_gate)
                {
                    ThrowReported();
                    while (!_channel.IsOpen)
                    {
                        ThrowReported();
                        if (!Waits.Wait(_gate, publishDeadline, cancellationToken)) throw PublishTimedOut(deadline);
                        Monitor.Exit(_gate); // a caller showing progress hears of the wait for the reconnect, outside _gate
                        try { WaitObserver.Waiting(); }
                        finally { Monitor.Enter(_gate); }
                    }
                }
                // Not taken by the client (a lost or stalled connection): again, once it has reconnected.
                if (PublishCall(pending, deadline, cancellationToken)) return;
            }
        }

        private Task OnConfirm(ulong tag, bool multiple, bool nack)
        {
            lock (_gate)
            {
                if (multiple)
                {
                    int done = 0;
                    for (ulong sequence = _lowestUnconfirmed; sequence <= tag && _unconfirmed.Count > 0; sequence++)
                    {
                        if (_unconfirmed.Remove(sequence)) done++;
                    }
                    if (tag >= _lowestUnconfirmed) _lowestUnconfirmed = tag + 1;
                    if (nack) _nacked += done;
                }
                else if (_unconfirmed.Remove(tag) && nack)
                {
                    _nacked++;
                }
                Monitor.PulseAll(_gate);
            }
            return Task.CompletedTask;
        }

        private Task OnReturn(object sender, BasicReturnEventArgs e)
        {
            // A returned message is then confirmed (basic.return comes first): count it here.
            lock (_gate)
            {
                _returned++;
                _returnReason = $"{e.ReplyCode} {e.ReplyText}";
                Monitor.PulseAll(_gate);
            }
            return Task.CompletedTask;
        }

        private Task OnShutdown(object sender, ShutdownEventArgs reason)
        {
            lock (_gate)
            {
                _generation++;
                foreach (Pending p in _unconfirmed.Values) _resend[p.Order] = p;
                _unconfirmed.Clear();
                if (reason.Initiator == ShutdownInitiator.Peer && AmqpErrors.IsChannelError(reason.ReplyCode))
                {
                    _fatal = AmqpErrors.FromShutdown(reason, $"Publishing to '{_target}' failed", _target, isExchange: _exchange.Length > 0);
                }
                Monitor.PulseAll(_gate);
            }
            return Task.CompletedTask;
        }

        private void Wake()
        {
            lock (_gate) Monitor.PulseAll(_gate);
        }

        /// <summary>Throws what happened since the last call: the channel lost for good, nacks, returns, expired confirms.</summary>
        private void ThrowReported()
        {
            if (_fatal != null) throw _fatal;
            ExpireOverdue();
            if (_nacked + _returned + _expired == 0) return;
            var parts = new List<string>();
            if (_returned > 0) parts.Add($"{_returned} could not be routed ({_returnReason}; does the queue exist?)");
            if (_nacked > 0) parts.Add($"{_nacked} were refused by the broker (basic.nack)");
            if (_expired > 0) parts.Add($"{_expired} were not confirmed within {_timeout.TotalSeconds} s and may or may not have arrived");
            _nacked = _returned = _expired = 0;
            throw new IpcException(IpcErrorKind.PublishNotConfirmed, $"Messages sent to '{_target}' were not confirmed: {string.Join("; ", parts)}.", _target);
        }

        private void ExpireOverdue()
        {
            long now = Stopwatch.GetTimestamp();
            if (now < _earliestExpiry) return;
            long earliest = long.MaxValue;
            foreach (Pending p in _unconfirmed.Values) if (p.ExpiresAt > now) earliest = Math.Min(earliest, p.ExpiresAt);
            foreach (Pending p in _resend.Values) if (p.ExpiresAt > now) earliest = Math.Min(earliest, p.ExpiresAt);
            _earliestExpiry = earliest;
            var overdue = new List<ulong>();
            foreach (KeyValuePair<ulong, Pending> pair in _unconfirmed)
            {
                if (pair.Value.ExpiresAt <= now) overdue.Add(pair.Key);
            }
            foreach (ulong sequence in overdue) _unconfirmed.Remove(sequence);
            var overdueResend = new List<long>();
            foreach (KeyValuePair<long, Pending> pair in _resend)
            {
                if (pair.Value.ExpiresAt <= now) overdueResend.Add(pair.Key);
            }
            foreach (long order in overdueResend) _resend.Remove(order);
            _expired += overdue.Count + overdueResend.Count;
        }

        /// <summary>When the next confirm may be overdue (a lower bound: waking early only costs a check).</summary>
        private Deadline OldestExpiry() => _earliestExpiry == long.MaxValue ? Deadline.Infinite : DeadlineAt(_earliestExpiry);

        private static Deadline DeadlineAt(long stopwatchTicks)
        {
            long left = stopwatchTicks - Stopwatch.GetTimestamp();
            return Deadline.After(TimeSpan.FromSeconds(Math.Max(0, left) / (double)Stopwatch.Frequency));
        }
    }
}
