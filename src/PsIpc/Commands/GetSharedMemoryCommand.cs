using System.Linq;
using System.Management.Automation;
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
        public string[] Name { get; set; }

        protected override void ProcessRecord() =>
            NameFilter.WriteMatches(this, SharedMemoryInfo.List(), Name, WildcardOptions.None,
                (segment, pattern) => pattern.IsMatch(segment.Name),
                name => ErrorMapping.ToErrorRecord(new Transport.IpcException(Transport.IpcErrorKind.SharedMemoryNotFound,
                    $"No shared memory segment is named '{name}'.", name)));
    }
}
