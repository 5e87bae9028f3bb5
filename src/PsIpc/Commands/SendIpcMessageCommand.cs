using System;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Commands
{
    /// <summary>
    /// Sends each pipeline item as one message (or -InputObject as one message). Messages are queued and
    /// written by the channel in the background, batched when they pile up; when the queue is full the
    /// command waits (back-pressure). It ends only when everything it sent was written.
    /// </summary>
    [Cmdlet(VerbsCommunications.Send, "IpcMessage")]
    [OutputType(typeof(void))]
    public sealed class SendIpcMessageCommand : EncodingCmdlet
    {
        private bool _sentAny;
        private WaitProgress? _roomProgress;

        [Parameter(Mandatory = true, Position = 0)]
        [ChannelTransformation]
        [ArgumentCompleter(typeof(SendingChannelCompleter))]
        [ValidateNotNull]
        public IpcChannel Channel { get; set; } = null!; // mandatory: bound before BeginProcessing

        [Parameter(Position = 1, ValueFromPipeline = true)]
        [AllowNull]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public object? InputObject { get; set; }

        protected override void BeginProcessing()
        {
            if (!Channel.CanSend) ThrowIpcError(Channel.NotSupportedError(ChannelOperation.Send));
        }

        protected override void ProcessRecord()
        {
            // Without pipeline input and without -InputObject there is nothing to send.
            if (!MyInvocation.ExpectingInput && !MyInvocation.BoundParameters.ContainsKey(nameof(InputObject))) return;
            if (!TryEncode(InputObject, out byte[] payload, out MessageFormat wireFormat)) return;
            try
            {
                Deadline deadline = DeadlineFrom(TimeoutSeconds);
                if (Channel.State == ChannelState.Listening)
                {
                    // A server without a client yet: the send waits for one, which can take long. Wait on a worker so
                    // that the wait shows progress (once a client is there, sends go inline again).
                    WriteVerbose($"'{Channel.Name}' has no client yet: waiting for one to send to.");
                    new WaitProgress(this, Channel.Name, $"Waiting for a client of '{Channel.Name}' to send to")
                        .Run(() => { Channel.Send(wireFormat, payload, deadline, CancelToken); return true; }, deadline, TimeoutSeconds, CancelToken);
                }
                else
                {
                    // A wait for room (the receiver is not taking messages) shows progress between its slices.
                    WaitProgress progress = _roomProgress ?? (_roomProgress = new WaitProgress(this, Channel.Name,
                        $"Sending to '{Channel.Name}' (waiting for room: the receiver is not taking messages)"));
                    try
                    {
                        using (progress.Observe(deadline, TimeoutSeconds)) Channel.Send(wireFormat, payload, deadline, CancelToken);
                    }
                    finally
                    {
                        if (!Stopping) progress.Complete();
                    }
                }
                _sentAny = true;
            }
            catch (IpcException e)
            {
                ReportIpcError(e);
            }
            catch (OperationCanceledException)
            {
            }
        }

        protected override void EndProcessing()
        {
            base.EndProcessing();
            if (!_sentAny) return;
            var progress = new WaitProgress(this, Channel.Name, $"Sending to '{Channel.Name}' (waiting for the peer to take what was queued)");
            try
            {
                // -TimeoutSeconds bounds the waits for room and for a client; writing out what was accepted
                // gets at least a second, so -TimeoutSeconds 0 (never wait for room) still succeeds.
                double seconds = HasTimeout ? Math.Max(TimeoutSeconds, 1) : 0;
                Deadline deadline = HasTimeout ? Deadline.After(TimeSpan.FromSeconds(seconds)) : Deadline.Infinite;
                // In slices of a second, with progress between them: a flush that times out has changed nothing.
                using (Channel.BeginWait())
                {
                    while (true)
                    {
                        try
                        {
                            Channel.Flush(Deadline.Earliest(deadline, WaitProgress.NextSlice()), CancelToken);
                            break;
                        }
                        catch (IpcException e) when (e.Kind == IpcErrorKind.FlushTimeout && !deadline.HasExpired)
                        {
                            progress.ReportWaiting(deadline, seconds);
                        }
                    }
                }
                if (!Stopping) progress.Complete();
            }
            catch (IpcException e)
            {
                ReportIpcError(e);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
