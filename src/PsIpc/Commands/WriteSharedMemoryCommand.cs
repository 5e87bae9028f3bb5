using System;
using System.Collections.Generic;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using PsIpc.Transport.SharedMemory;

namespace PsIpc.Commands
{
    /// <summary>
    /// Publishes a value to a segment (encoded as Send-IpcMessage encodes it; the pipeline's items together are one
    /// value, published when the pipeline ends), or with -Bytes writes bytes at an offset.
    /// </summary>
    [Cmdlet(VerbsCommunications.Write, "SharedMemory", DefaultParameterSetName = ValueSet)]
    [OutputType(typeof(void))]
    public sealed class WriteSharedMemoryCommand : IpcCmdlet
    {
        private const string ValueSet = "Value";
        private const string BytesSet = "Bytes";
        private readonly List<object?> _items = new List<object?>();
        private readonly PayloadCodec _codec = new PayloadCodec();
        private readonly DepthProbe _depthProbe = new DepthProbe();

        [Parameter(Mandatory = true, Position = 0)]
        [SharedMemoryTransformation]
        [ArgumentCompleter(typeof(SharedMemoryNameCompleter))]
        [ValidateNotNull]
        public SharedMemoryChannel? SharedMemory { get; set; }

        [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ParameterSetName = ValueSet)]
        [AllowNull]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public object? InputObject { get; set; }

        [Parameter(ParameterSetName = ValueSet)]
        public PayloadFormat Format { get; set; } = PayloadFormat.Auto;

        [Parameter(ParameterSetName = ValueSet)]
        [ValidateRange(1, 100)]
        public int Depth { get; set; } = 2;

        [Parameter(Mandatory = true, ParameterSetName = BytesSet)]
        [ValidateNotNull]
        public byte[] Bytes { get; set; } = Array.Empty<byte>();

        [Parameter(ParameterSetName = BytesSet)]
        [ValidateRange(0L, long.MaxValue)]
        public long Offset { get; set; }

        [Parameter]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        /// <summary>The segment to write: -SharedMemory, which is mandatory and, after BeginProcessing, never a queue.</summary>
        private SharedMemorySegment Segment =>
            SharedMemory as SharedMemorySegment ?? throw new PSInvalidOperationException("-SharedMemory is not a segment.");

        protected override void BeginProcessing()
        {
            if (SharedMemory is SharedMemoryChannel channel && !(channel is SharedMemorySegment))
            {
                ThrowIpcError(new IpcException(IpcErrorKind.SharedMemoryIsQueue,
                    $"'{channel.Name}' is a shared memory queue: add messages to it with Send-IpcMessage.", channel.Name));
            }
        }

        protected override void ProcessRecord()
        {
            if (ParameterSetName == BytesSet)
            {
                Run(segment => segment.WriteBytes(Offset, Bytes, DeadlineFrom(TimeoutSeconds), CancelToken));
                return;
            }
            if (MyInvocation.ExpectingInput) _items.Add(InputObject);
            else Publish(InputObject);
        }

        protected override void EndProcessing()
        {
            if (ParameterSetName == ValueSet && MyInvocation.ExpectingInput && _items.Count > 0)
            {
                Publish(_items.Count == 1 ? _items[0] : _items.ToArray());
            }
        }

        private void Publish(object? value)
        {
            if (!EncodingCmdlet.TryEncode(this, _codec, _depthProbe, value, Format, Depth, "is published",
                out byte[] payload, out MessageFormat wireFormat)) return;
            Run(segment => segment.WriteValue(wireFormat, payload, DeadlineFrom(TimeoutSeconds), CancelToken));
        }

        private void Run(Action<SharedMemorySegment> write)
        {
            // A wait for the segment's lock (another process or thread holds it) shows progress a second at a time.
            var progress = new WaitProgress(this, Segment.Name, $"Writing to '{Segment.Name}' (waiting for its lock)");
            try
            {
                using (progress.Observe(DeadlineFrom(TimeoutSeconds), TimeoutSeconds)) write(Segment);
            }
            catch (IpcException e)
            {
                ReportIpcError(e);
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                if (!Stopping) progress.Complete();
            }
        }

        protected override void StopProcessing()
        {
            base.StopProcessing();
            _codec.Dispose();
        }
    }
}
