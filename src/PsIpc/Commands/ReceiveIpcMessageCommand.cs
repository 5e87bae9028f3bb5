using System;
using System.Collections.Generic;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Commands
{
    /// <summary>
    /// Streams received messages to the pipeline as they arrive, until -Count messages, the timeout, or
    /// the peer(s) closing. Messages beyond -Count stay in the channel for the next Receive.
    /// </summary>
    [Cmdlet(VerbsCommunications.Receive, "IpcMessage")]
    [OutputType(typeof(object))]
    [OutputType(typeof(IpcEnvelope))]
    public sealed class ReceiveIpcMessageCommand : IpcCmdlet
    {
        private const int BatchSize = 1024;
        private readonly PayloadCodec _codec = new PayloadCodec();
        private ReceivedText? _text;

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [ChannelTransformation]
        [ArgumentCompleter(typeof(ReceivingChannelCompleter))]
        [ValidateNotNull]
        public IpcChannel Channel { get; set; } = null!; // mandatory: bound before ProcessRecord

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int Count { get; set; }

        [Parameter]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        [Parameter]
        public SwitchParameter Envelope { get; set; }

        /// <summary>Writes Bytes messages as text in this encoding (Raw framing: characters split between reads are joined).</summary>
        [Parameter]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingNameCompleter))]
        public System.Text.Encoding? Encoding { get; set; }

        protected override void ProcessRecord()
        {
            if (!Channel.CanReceive) ThrowIpcError(Channel.NotSupportedError(ChannelOperation.Receive));
            PsIpc.Events.IpcMessageSubscription? subscription = PsIpc.Events.IpcMessageSubscription.Of(Channel);
            if (subscription != null)
            {
                // Its messages become events (Register-IpcMessageEvent): taking some here would split the stream.
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(new InvalidOperationException(
                    $"The messages of '{Channel.Name}' raise the events '{subscription.SourceIdentifier}' (Register-IpcMessageEvent): Wait-Event or Get-Event takes them. " +
                    $"Unregister-Event -SourceIdentifier '{subscription.SourceIdentifier}' to receive them here again."),
                    "ChannelHasSubscription", ErrorCategory.ResourceBusy, Channel.Name));
            }
            Deadline deadline = DeadlineFrom(TimeoutSeconds);
            long remaining = Count > 0 ? Count : long.MaxValue;
            var batch = new List<IpcMessage>(BatchSize);
            var waiting = new WaitProgress(this, Channel.Name);
            var activity = new ChannelActivity(Channel);
            WriteVerbose($"Receiving from {ChannelActivity.Describe(Channel)}: {Channel.PeerCount} peer(s) connected.");
            try
            {
                while (remaining > 0)
                {
                    batch.Clear();
                    // Wait in slices so that a long wait can show progress from the pipeline thread.
                    int taken = Channel.Receive(batch, (int)Math.Min(remaining, BatchSize), Deadline.Earliest(deadline, WaitProgress.NextSlice()), CancelToken);
                    activity.Report(this);
                    if (taken == 0 && !deadline.HasExpired)
                    {
                        waiting.Report(Count > 0 ? Count - remaining : -1, Count);
                        continue;
                    }
                    waiting.Reset();
                    if (taken < 0)
                    {
                        if (Count > 0) WriteVerbose($"The peer(s) of '{Channel.Name}' closed after {Count - remaining} of {Count} messages.");
                        return;
                    }
                    if (taken == 0)
                    {
                        string got = Count > 0 ? $" ({Count - remaining} of {Count} messages arrived)" : string.Empty;
                        WriteIpcError(new IpcException(IpcErrorKind.ReceiveTimeout,
                            $"Timed out after {TimeoutSeconds} s waiting for messages on '{Channel.Name}'{got}.", Channel.Name));
                        return;
                    }
                    int written = 0;
                    bool stoppedBeforeWrite = false;
                    try
                    {
                        for (; written < batch.Count; written++)
                        {
                            IpcMessage message = batch[written];
                            if (message.IsEndOfInput) continue; // a Line/Raw client's half-close: no message
                            if (message.Fault != null)
                            {
                                WriteIpcError(message.Fault);
                                continue;
                            }
                            stoppedBeforeWrite = Stopping; // the engine's flag: set before StopProcessing runs
                            if (WriteMessage(message)) remaining--;
                        }
                    }
                    catch (PipelineStoppedException)
                    {
                        // The pipeline stopped mid-batch. If it was already stopping when we called WriteObject,
                        // WriteObject refused the message; otherwise a downstream command had it (Select-Object
                        // -First that has enough, or Ctrl+C while ForEach-Object worked on it). What was not
                        // delivered stays in the channel for the next Receive, and nothing is delivered twice.
                        int firstUndelivered = stoppedBeforeWrite ? written : written + 1;
                        if (!stoppedBeforeWrite) Channel.Acknowledge(batch[written]);
                        Channel.ReturnUnreceived(batch, firstUndelivered);
                        throw;
                    }
                }
            }
            catch (IpcException e)
            {
                ThrowIpcError(e);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: messages not yet taken stay in the channel.
            }
            finally
            {
                if (!Stopping) waiting.Complete();
            }
        }

        /// <returns>False when the message held no whole character yet (-Encoding on a Raw stream): nothing was written.</returns>
        private bool WriteMessage(IpcMessage message)
        {
            object? body;
            try
            {
                if (Encoding != null && ReceivedText.Applies(message))
                {
                    string text = (_text ?? (_text = new ReceivedText(Encoding))).Decode(message);
                    if (text.Length == 0 && message.Payload.Length > 0)
                    {
                        Channel.Acknowledge(message);
                        return false;
                    }
                    body = text;
                }
                else
                {
                    body = _codec.Decode(message);
                }
            }
            catch (Exception e) when (PayloadCodec.IsDecodeFailure(e))
            {
                Channel.Reject(message, e); // a transport that can dead-letter it keeps it there
                WriteError(ErrorMapping.ToErrorRecord(e, "DecodeFailed", ErrorCategory.InvalidData, Channel.Name));
                return true;
            }
            if (Envelope) WriteObject(new IpcEnvelope(body, message.Sender, Channel, message));
            else WriteObject(body);
            Channel.Acknowledge(message); // written to the pipeline: a transport with acknowledgements confirms it
            return true;
        }

        protected override void EndProcessing() => _codec.Dispose();
    }
}
