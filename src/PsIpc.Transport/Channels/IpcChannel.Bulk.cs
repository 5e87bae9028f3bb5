using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Channels
{
    // Bulk receive: the next message's bytes go into the caller's buffer or stream, so a script moving files or
    // images keeps one buffer instead of getting a new array per message (issue 12, item 3). Whatever the format,
    // the payload's bytes are what is copied (Text as UTF-8, CliXml and Json as their text).
    public abstract partial class IpcChannel
    {
        /// <summary>
        /// Receives the next message into <paramref name="buffer"/> at <paramref name="offset"/> and returns its length,
        /// or -1 when no message will ever come (every peer closed).
        /// </summary>
        /// <exception cref="IpcException">ReceiveTimeout at the deadline; BufferTooSmall when the message is longer than
        /// <paramref name="count"/> (it stays in the channel, for a larger buffer or a plain Receive); the error of the
        /// stream at this point (PeerDisconnected for a peer that died in the middle of a message, ...: the next call
        /// goes on with the messages after it); ChannelClosed, OperationNotSupported.</exception>
        public int ReceiveInto(byte[] buffer, int offset, int count, Deadline deadline, CancellationToken cancellationToken)
        {
            if (TryReceiveInto(buffer, offset, count, deadline, cancellationToken, out int length)) return length;
            throw ReceiveTimedOut();
        }

        /// <summary>As <see cref="ReceiveInto"/>, but false instead of ReceiveTimeout at the deadline.</summary>
        public bool TryReceiveInto(byte[] buffer, int offset, int count, Deadline deadline, CancellationToken cancellationToken, out int length)
        {
            if (buffer == null) throw new ArgumentNullException(nameof(buffer));
            if (offset < 0 || offset > buffer.Length) throw new ArgumentOutOfRangeException(nameof(offset));
            if (count < 0 || count > buffer.Length - offset) throw new ArgumentOutOfRangeException(nameof(count));
            length = 0;
            if (!TryTakeOne(deadline, cancellationToken, out IpcMessage? message)) return false;
            if (message == null)
            {
                length = -1;
                return true;
            }
            byte[] payload = message.Payload;
            if (payload.Length > count)
            {
                ReturnUnreceived(new[] { message }, 0);
                throw new IpcException(IpcErrorKind.BufferTooSmall,
                    $"The next message on '{Name}' is {payload.Length} bytes; the buffer has room for {count}. It stays in the channel: receive it with a larger buffer, or as a new array.", Name);
            }
            Buffer.BlockCopy(payload, 0, buffer, offset, payload.Length);
            Consumed(message);
            length = payload.Length;
            return true;
        }

        /// <summary>
        /// Receives the next message and writes its bytes to <paramref name="destination"/> (at its position); returns the
        /// message's length, or -1 when no message will ever come.
        /// </summary>
        /// <exception cref="IpcException">As <see cref="ReceiveInto"/>, without BufferTooSmall.</exception>
        /// <exception cref="IOException">The destination failed: the message is put back in the channel (the destination
        /// may hold part of it).</exception>
        public long ReceiveTo(Stream destination, Deadline deadline, CancellationToken cancellationToken)
        {
            if (TryReceiveTo(destination, deadline, cancellationToken, out long length)) return length;
            throw ReceiveTimedOut();
        }

        /// <summary>As <see cref="ReceiveTo"/>, but false instead of ReceiveTimeout at the deadline.</summary>
        public bool TryReceiveTo(Stream destination, Deadline deadline, CancellationToken cancellationToken, out long length)
        {
            if (destination == null) throw new ArgumentNullException(nameof(destination));
            if (!destination.CanWrite) throw new ArgumentException("The destination stream cannot be written to.", nameof(destination));
            length = 0;
            if (!TryTakeOne(deadline, cancellationToken, out IpcMessage? message)) return false;
            if (message == null)
            {
                length = -1;
                return true;
            }
            try
            {
                destination.Write(message.Payload, 0, message.Payload.Length);
            }
            catch
            {
                ReturnUnreceived(new[] { message }, 0);
                throw;
            }
            length = message.Payload.Length;
            Consumed(message);
            return true;
        }

        // One message, skipping end-of-input markers; null when none will come; false at the deadline. A fault in the
        // stream is thrown (the messages after it wait for the next call).
        private bool TryTakeOne(Deadline deadline, CancellationToken cancellationToken, out IpcMessage? message)
        {
            var one = new List<IpcMessage>(1);
            while (true)
            {
                one.Clear();
                int taken = Receive(one, 1, deadline, cancellationToken);
                if (taken == 0)
                {
                    message = null;
                    return false;
                }
                if (taken < 0)
                {
                    message = null;
                    return true;
                }
                IpcMessage m = one[0];
                if (m.IsEndOfInput) continue;
                if (m.Fault != null) throw m.Fault;
                message = m;
                return true;
            }
        }

        // The payload was copied out and the message is gone: acknowledged (a broker's ack), and its array, if the
        // transport rented it, kept for the next message of the same length (nobody else holds it).
        private void Consumed(IpcMessage message)
        {
            Acknowledge(message);
            PayloadArrays.Return(message.Payload);
        }

        private IpcException ReceiveTimedOut() =>
            new IpcException(IpcErrorKind.ReceiveTimeout, $"Timed out waiting for a message on '{Name}'.", Name);
    }
}
