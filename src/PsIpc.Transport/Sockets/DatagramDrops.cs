using System;
using System.Diagnostics;
using System.Threading;
using PsIpc.Transport.Channels;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// What a UDP channel (server or client) keeps of the datagrams it did not deliver: a count per reason,
    /// the last reason, and the errors reported in its receive stream, never waiting for room there.
    /// </summary>
    internal sealed class DatagramDrops
    {
        private readonly BoundedQueue<IpcMessage> _inbound;
        private readonly IpcChannel _channel;
        private readonly bool _throttle;
        private long _malformed, _tooLarge, _queueFull, _lastReported;
        private IpcException? _lastError;

        /// <param name="throttle">Report at most one error a second (a server: anyone can send it datagrams, and a
        /// flood of garbage must not crowd real messages out of the queue). Every drop is counted either way.</param>
        public DatagramDrops(BoundedQueue<IpcMessage> inbound, IpcChannel channel, bool throttle)
        {
            _inbound = inbound;
            _channel = channel;
            _throttle = throttle;
        }

        public long Malformed => Interlocked.Read(ref _malformed);
        public long TooLarge => Interlocked.Read(ref _tooLarge);
        public long QueueFull => Interlocked.Read(ref _queueFull);
        public long Total => Malformed + TooLarge + QueueFull;
        public IpcException? LastError => _lastError;

        /// <summary>A datagram that was not a valid message (MessageTooLarge, or malformed for the framing).</summary>
        public void Invalid(IpcException reason)
        {
            Interlocked.Increment(ref reason.Kind == IpcErrorKind.MessageTooLarge ? ref _tooLarge : ref _malformed);
            _channel.CountDropped();
            Report(reason);
        }

        /// <summary>A valid datagram that found the receive queue full.</summary>
        public void QueueWasFull()
        {
            Interlocked.Increment(ref _queueFull);
            _channel.CountDropped();
        }

        /// <summary>An error that the caller throws itself (a send refused): only remembered as the last error.</summary>
        public void Remember(IpcException reason) => _lastError = reason;

        /// <summary>An error at this point of the stream (it is also the last error).</summary>
        public void Report(IpcException reason)
        {
            _lastError = reason;
            if (_throttle)
            {
                long now = Stopwatch.GetTimestamp();
                long last = Interlocked.Read(ref _lastReported);
                if (last != 0 && now - last < Stopwatch.Frequency) return;
                if (Interlocked.CompareExchange(ref _lastReported, now, last) != last) return;
            }
            try
            {
                _inbound.TryAdd(IpcMessage.ForFault(reason, _channel), 64, Deadline.After(TimeSpan.Zero), CancellationToken.None);
            }
            catch (InvalidOperationException) { } // closed: nobody will read it
        }
    }
}
