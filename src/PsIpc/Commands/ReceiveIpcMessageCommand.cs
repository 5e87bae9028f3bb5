using System;
using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Commands
{
    /// <summary>
    /// Streams received messages to the pipeline as they arrive, until -Count messages, the timeout, or
    /// the peer(s) closing. Messages beyond -Count stay in the channel for the next Receive. With -Buffer or
    /// -OutFile the bytes of each message go into the caller's array or a file instead (bulk data).
    /// </summary>
    [Cmdlet(VerbsCommunications.Receive, "IpcMessage", DefaultParameterSetName = ObjectSet)]
    [OutputType(typeof(object), ParameterSetName = new[] { ObjectSet })]
    [OutputType(typeof(IpcEnvelope), ParameterSetName = new[] { ObjectSet })]
    [OutputType(typeof(int), ParameterSetName = new[] { BufferSet })]
    public sealed class ReceiveIpcMessageCommand : IpcCmdlet
    {
        private const string ObjectSet = "Object";
        private const string BufferSet = "Buffer";
        private const string OutFileSet = "OutFile";
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

        [Parameter(ParameterSetName = ObjectSet)]
        public SwitchParameter Envelope { get; set; }

        /// <summary>Writes Bytes messages as text in this encoding (Raw framing: characters split between reads are joined).</summary>
        [Parameter(ParameterSetName = ObjectSet)]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingNameCompleter))]
        public System.Text.Encoding? Encoding { get; set; }

        /// <summary>Each message's bytes are copied into this array (from index 0) and its length is written.</summary>
        [Parameter(Mandatory = true, ParameterSetName = BufferSet)]
        [ValidateNotNull]
        public byte[] Buffer { get; set; } = null!; // mandatory in its set

        /// <summary>Each message's bytes are written to this file, in order (created or overwritten).</summary>
        [Parameter(Mandatory = true, ParameterSetName = OutFileSet)]
        [ValidateNotNullOrEmpty]
        public string OutFile { get; set; } = null!; // mandatory in its set

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
            if (ParameterSetName != ObjectSet)
            {
                ReceiveBytes();
                return;
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

        // -Buffer and -OutFile: one message at a time into the caller's array or the file, no object per message
        // but the length (-Buffer). A failure in the stream (a peer that died mid-message) is written where it
        // happened, as without them; a message too large for -Buffer stops the command and stays in the channel.
        private void ReceiveBytes()
        {
            Deadline deadline = DeadlineFrom(TimeoutSeconds);
            long remaining = Count > 0 ? Count : long.MaxValue;
            long received = 0, bytes = 0;
            var waiting = new WaitProgress(this, Channel.Name);
            var activity = new ChannelActivity(Channel);
            FileStream? file = ParameterSetName == OutFileSet ? OpenOutFile() : null;
            WriteVerbose($"Receiving from {ChannelActivity.Describe(Channel)} into {(file != null ? file.Name : $"a {Buffer.Length}-byte buffer")}: {Channel.PeerCount} peer(s) connected.");
            try
            {
                while (remaining > 0)
                {
                    bool taken;
                    long length;
                    try
                    {
                        // Wait in slices so that a long wait can show progress from the pipeline thread.
                        Deadline slice = Deadline.Earliest(deadline, WaitProgress.NextSlice());
                        if (file != null)
                        {
                            taken = Channel.TryReceiveTo(file, slice, CancelToken, out length);
                        }
                        else
                        {
                            taken = Channel.TryReceiveInto(Buffer, 0, Buffer.Length, slice, CancelToken, out int n);
                            length = n;
                        }
                    }
                    catch (IpcException e) when (IsStreamFailure(e))
                    {
                        activity.Report(this);
                        WriteIpcError(e);
                        continue;
                    }
                    activity.Report(this);
                    if (!taken)
                    {
                        if (!deadline.HasExpired)
                        {
                            waiting.Report(Count > 0 ? Count - remaining : -1, Count);
                            continue;
                        }
                        string got = Count > 0 ? $" ({Count - remaining} of {Count} messages arrived)" : string.Empty;
                        WriteIpcError(new IpcException(IpcErrorKind.ReceiveTimeout,
                            $"Timed out after {TimeoutSeconds} s waiting for messages on '{Channel.Name}'{got}.", Channel.Name));
                        return;
                    }
                    waiting.Reset();
                    if (length < 0)
                    {
                        if (Count > 0) WriteVerbose($"The peer(s) of '{Channel.Name}' closed after {Count - remaining} of {Count} messages.");
                        return;
                    }
                    remaining--;
                    received++;
                    bytes += length;
                    if (file == null) WriteObject((int)length); // the caller reads the buffer before the next message overwrites it
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
            catch (Exception e) when (file != null && (e is IOException || e is UnauthorizedAccessException))
            {
                // The message that could not be written went back to the channel.
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(e, "OutFileFailed", ErrorCategory.WriteError, OutFile));
            }
            finally
            {
                file?.Dispose();
                if (!Stopping)
                {
                    waiting.Complete();
                    WriteVerbose($"Received {received} message(s), {bytes} bytes, from '{Channel.Name}'{(file != null ? $" into '{file.Name}'" : string.Empty)}.");
                }
            }
        }

        // Errors of the stream at this point (the messages after them still come), as opposed to errors of the call.
        private static bool IsStreamFailure(IpcException e) =>
            e.Kind != IpcErrorKind.ChannelClosed && e.Kind != IpcErrorKind.OperationNotSupported && e.Kind != IpcErrorKind.BufferTooSmall;

        private bool _outFileCreated;

        // The file is created (or emptied) when the first channel is received from; later channels piped in append.
        private FileStream OpenOutFile()
        {
            string path;
            ProviderInfo provider;
            try
            {
                path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(OutFile, out provider, out _);
            }
            catch (Exception e) when (e is RuntimeException || e is NotSupportedException || e is ArgumentException)
            {
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(e, "OutFileFailed", ErrorCategory.InvalidArgument, OutFile));
                throw; // not reached: ThrowTerminatingError throws
            }
            if (!string.Equals(provider.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
            {
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(new ArgumentException($"-OutFile '{OutFile}' is a path of the {provider.Name} provider; it must be a file system path."),
                    "OutFileFailed", ErrorCategory.InvalidArgument, OutFile));
            }
            try
            {
                var file = new FileStream(path, _outFileCreated ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read, 64 * 1024);
                _outFileCreated = true;
                return file;
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is ArgumentException || e is NotSupportedException || e is System.Security.SecurityException)
            {
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(e, "OutFileFailed", ErrorCategory.OpenError, OutFile));
                throw; // not reached
            }
        }

        protected override void EndProcessing() => _codec.Dispose();
    }
}
