using System.Collections.Generic;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.SharedMemory;

namespace PsIpc.Commands
{
    /// <summary>Lists this user's shared memory segments and queues (on Windows: those this process opened).</summary>
    [Cmdlet(VerbsCommon.Get, "SharedMemory")]
    [OutputType(typeof(SharedMemoryInfo))]
    public sealed class GetSharedMemoryCommand : PSCmdlet
    {
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(SharedMemoryNameCompleter))]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[]? Name { get; set; }

        protected override void ProcessRecord()
        {
            IReadOnlyList<SharedMemoryInfo> segments;
            try
            {
                segments = SharedMemoryInfo.List();
            }
            catch (IpcException e)
            {
                // Nothing can be listed (the directory belongs to another user, say): one error, as Get-ChildItem gives.
                WriteError(ErrorMapping.ToErrorRecord(e));
                return;
            }
            NameFilter.WriteMatches(this, segments, Name, WildcardOptions.None,
                (segment, pattern) => pattern.IsMatch(segment.Name),
                name => ErrorMapping.ToErrorRecord(new IpcException(IpcErrorKind.SharedMemoryNotFound,
                    $"No shared memory segment is named '{name}'.", name)));
        }
    }
}
