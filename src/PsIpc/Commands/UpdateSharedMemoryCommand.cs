using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using PsIpc.Transport.SharedMemory;

namespace PsIpc.Commands
{
    /// <summary>
    /// Read-modify-write of a segment's value under its cross-process lock: the script block gets the current
    /// value (decoded as Read-SharedMemory decodes it) and its output is written back (encoded as Write-SharedMemory
    /// encodes it) before any other process or thread can read or write the segment.
    /// </summary>
    [Cmdlet(VerbsData.Update, "SharedMemory")]
    [OutputType(typeof(object))]
    public sealed class UpdateSharedMemoryCommand : EncodingCmdlet
    {

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [SharedMemoryTransformation]
        [ArgumentCompleter(typeof(SharedMemoryNameCompleter))]
        [ValidateNotNull]
        public SharedMemoryChannel? SharedMemory { get; set; }

        [Parameter(Mandatory = true, Position = 1)]
        [ValidateNotNull]
        public ScriptBlock ScriptBlock { get; set; } = null!; // mandatory: bound before ProcessRecord

        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            SharedMemoryChannel channel = SharedMemory ?? throw new PSArgumentNullException(nameof(SharedMemory)); // mandatory, not null
            if (!(channel is SharedMemorySegment segment))
            {
                ThrowIpcError(new IpcException(IpcErrorKind.SharedMemoryIsQueue,
                    $"'{channel.Name}' is a shared memory queue: it has no value to update. Take its messages with Receive-IpcMessage.", channel.Name));
                return;
            }
            object? written = null;
            bool wrote;
            Deadline deadline = DeadlineFrom(TimeoutSeconds);
            // A wait for the segment's lock (another process or thread holds it) shows progress a second at a time;
            // the observer is taken off before the script block runs, so the script block's own waits are its own.
            var progress = new WaitProgress(this, segment.Name, $"Updating '{segment.Name}' (waiting for its lock)");
            WaitObserver.Scope observing = progress.Observe(deadline, TimeoutSeconds);
            try
            {
                wrote = segment.Update(current =>
                {
                    observing.Dispose();
                    if (!Stopping) progress.Complete();
                    Collection<PSObject> output = Invoke(segment, current);
                    if (output.Count == 0) return null; // no output: nothing to write
                    written = output.Count == 1 ? output[0] : ToArray(output);
                    byte[] payload = Encode(segment, written, out MessageFormat format);
                    return IpcMessage.Create(format, payload, segment);
                }, deadline, CancelToken);
            }
            catch (IpcException e)
            {
                ReportIpcError(e);
                return;
            }
            catch (OperationCanceledException)
            {
                return; // Ctrl+C while waiting for the lock: nothing was read or written
            }
            finally
            {
                observing.Dispose();
                if (!Stopping) progress.Complete();
            }
            if (!wrote)
            {
                WriteVerbose($"The script block wrote no output: the value of '{segment.Name}' was left as it was.");
                return;
            }
            if (PassThru) WriteObject(written, enumerateCollection: !(PayloadCodec.Unwrap(written) is byte[]));
        }

        /// <summary>Runs the script block with the current value as $_ and as its first argument; a failure ends the update.</summary>
        private Collection<PSObject> Invoke(SharedMemorySegment segment, IpcMessage? current)
        {
            object? value = null;
            if (current != null)
            {
                try
                {
                    value = Codec.Decode(current);
                }
                catch (Exception e) when (PayloadCodec.IsDecodeFailure(e))
                {
                    ThrowTerminatingError(DecodeError(e, segment.Name));
                }
            }
            try
            {
                var variables = new List<PSVariable> { new PSVariable("_", value) };
                return ScriptBlock.InvokeWithContext(null, variables, value);
            }
            catch (RuntimeException e) when (!(e is PipelineStoppedException))
            {
                // The script block read or wrote this segment: say so with the re-entry's own id.
                IpcException? reentry = FindReentry(e);
                if (reentry != null) ThrowIpcError(reentry);
                // The script block threw: nothing is written, the lock is released, and the error says which segment.
                var error = new RuntimeException(
                    $"The script block of Update-SharedMemory failed, so the value of '{segment.Name}' was not changed: {e.Message}", e);
                var record = ErrorMapping.ToErrorRecord(error, "UpdateScriptFailed", e.ErrorRecord?.CategoryInfo.Category ?? ErrorCategory.NotSpecified, segment.Name);
                ThrowTerminatingError(record);
                throw; // not reached: ThrowTerminatingError throws
            }
        }

        private static IpcException? FindReentry(Exception e)
        {
            for (Exception? inner = e; inner != null; inner = inner.InnerException)
            {
                if (inner is IpcException ipc && ipc.Kind == IpcErrorKind.SharedMemoryLockReentry) return ipc;
                if (inner is RuntimeException runtime && runtime.ErrorRecord?.Exception is IpcException recorded && recorded.Kind == IpcErrorKind.SharedMemoryLockReentry) return recorded;
            }
            return null;
        }

        private byte[] Encode(SharedMemorySegment segment, object? value, out MessageFormat format)
        {
            try
            {
                return Codec.Encode(value, Format, Depth, out format);
            }
            catch (Exception e) when (PayloadCodec.IsEncodeFailure(e))
            {
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(e, "EncodeFailed", ErrorCategory.InvalidData, segment.Name));
                throw; // not reached
            }
        }

        private static object?[] ToArray(Collection<PSObject> output)
        {
            var items = new object?[output.Count];
            for (int i = 0; i < items.Length; i++) items[i] = output[i];
            return items;
        }
    }
}
