using System;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.SharedMemory;

namespace PsIpc.Commands
{
    /// <summary>Reads the latest value of a segment (decoded as Send/Receive do) or, with -Count, bytes at an offset.</summary>
    [Cmdlet(VerbsCommunications.Read, "SharedMemory", DefaultParameterSetName = ValueSet)]
    [OutputType(typeof(object), ParameterSetName = new[] { ValueSet })]
    [OutputType(typeof(byte[]), ParameterSetName = new[] { BytesSet })]
    public sealed class ReadSharedMemoryCommand : IpcCmdlet
    {
        private const string ValueSet = "Value";
        private const string BytesSet = "Bytes";
        private readonly PayloadCodec _codec = new PayloadCodec();

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [SharedMemoryTransformation]
        [ArgumentCompleter(typeof(SharedMemoryNameCompleter))]
        [ValidateNotNull]
        public SharedMemoryChannel? SharedMemory { get; set; }

        [Parameter(ParameterSetName = BytesSet)]
        [ValidateRange(0L, long.MaxValue)]
        public long Offset { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = BytesSet)]
        [ValidateRange(0, int.MaxValue)]
        public int Count { get; set; }

        [Parameter]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        protected override void ProcessRecord()
        {
            SharedMemoryChannel channel = SharedMemory ?? throw new PSArgumentNullException(nameof(SharedMemory)); // mandatory, not null
            if (!(channel is SharedMemorySegment segment))
            {
                ThrowIpcError(new IpcException(IpcErrorKind.SharedMemoryIsQueue,
                    $"'{channel.Name}' is a shared memory queue: take its messages with Receive-IpcMessage.", channel.Name));
                return;
            }
            // A wait for the segment's lock (another process or thread holds it) shows progress a second at a time.
            var progress = new WaitProgress(this, segment.Name, $"Reading '{segment.Name}' (waiting for its lock)");
            try
            {
                if (ParameterSetName == BytesSet)
                {
                    byte[] bytes;
                    using (progress.Observe(DeadlineFrom(TimeoutSeconds), TimeoutSeconds)) bytes = segment.ReadBytes(Offset, Count, DeadlineFrom(TimeoutSeconds), CancelToken);
                    if (!Stopping) progress.Complete();
                    if (segment.IsDamaged) WriteWarning($"'{segment.Name}' is marked damaged: a process died while writing it, so these bytes may be half-written.");
                    WriteObject(bytes);
                    return;
                }
                IpcMessage? message;
                using (progress.Observe(DeadlineFrom(TimeoutSeconds), TimeoutSeconds)) message = segment.ReadValue(DeadlineFrom(TimeoutSeconds), CancelToken);
                if (!Stopping) progress.Complete();
                if (message == null)
                {
                    WriteVerbose($"No value was written to '{segment.Name}' yet.");
                    return;
                }
                object? value;
                try
                {
                    value = _codec.Decode(message);
                }
                catch (Exception e) when (PayloadCodec.IsDecodeFailure(e))
                {
                    WriteError(ErrorMapping.ToErrorRecord(e, "DecodeFailed", ErrorCategory.InvalidData, segment.Name));
                    return;
                }
                // An array value comes back item by item, as it was piped in; a byte[] value stays one object.
                WriteObject(value, enumerateCollection: !(value is byte[]));
            }
            catch (IpcException e)
            {
                if (!Stopping) progress.Complete();
                ReportIpcError(e);
            }
            catch (OperationCanceledException)
            {
            }
        }

        protected override void EndProcessing() => _codec.Dispose();
    }
}
