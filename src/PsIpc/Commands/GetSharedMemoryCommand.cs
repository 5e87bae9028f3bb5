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

        protected override void ProcessRecord()
        {
            var all = SharedMemoryInfo.List();
            if (Name == null)
            {
                WriteObject(all, enumerateCollection: true);
                return;
            }
            foreach (string name in Name)
            {
                var pattern = WildcardPattern.Get(name, WildcardOptions.None);
                var matches = all.Where(s => pattern.IsMatch(s.Name)).ToList();
                if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(name))
                {
                    WriteError(ErrorMapping.ToErrorRecord(new Transport.IpcException(Transport.IpcErrorKind.SharedMemoryNotFound,
                        $"No shared memory segment is named '{name}'.", name)));
                }
                WriteObject(matches, enumerateCollection: true);
            }
        }
    }
}
