using System;
using System.Management.Automation;

namespace PsIpc.Events
{
    /// <summary>
    /// The SourceEventArgs of an event Register-IpcMessageEvent raises ($EventArgs in an -Action): the message with
    /// where it came from, or the error that took its place, and the subscription's own -MessageData.
    /// </summary>
    public sealed class IpcMessageEventArgs : EventArgs
    {
        internal IpcMessageEventArgs(IpcEnvelope? envelope, ErrorRecord? error, PSObject? messageData)
        {
            Envelope = envelope;
            Error = error;
            MessageData = messageData;
        }

        /// <summary>The decoded message with its sender, channel, format and size; null when <see cref="Error"/> is set.</summary>
        public IpcEnvelope? Envelope { get; }

        /// <summary>
        /// What Receive-IpcMessage would have written to the error stream at this point of the stream (a message that
        /// could not be decoded: DecodeFailed; an error the peer or the transport reported); null for a message.
        /// </summary>
        public ErrorRecord? Error { get; }

        /// <summary>The -MessageData of the subscription ($Event.MessageData is the message itself).</summary>
        public PSObject? MessageData { get; }
    }
}
