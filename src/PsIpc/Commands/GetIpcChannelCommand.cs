using System.Linq;
using System.Management.Automation;
using PsIpc.Transport.Channels;

namespace PsIpc.Commands
{
    /// <summary>Lists the channels open in this process (every runspace of it).</summary>
    [Cmdlet(VerbsCommon.Get, "IpcChannel")]
    [OutputType(typeof(IpcChannel))]
    public sealed class GetIpcChannelCommand : PSCmdlet
    {
        [Parameter(Position = 0, ValueFromPipeline = true)]
        [ArgumentCompleter(typeof(ChannelNameCompleter))]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[] Name { get; set; }

        protected override void ProcessRecord()
        {
            var channels = ChannelRegistry.Snapshot();
            if (Name == null)
            {
                WriteObject(channels, enumerateCollection: true);
                return;
            }
            foreach (string name in Name)
            {
                var pattern = WildcardPattern.Get(name, WildcardOptions.IgnoreCase);
                var matches = channels.Where(c => pattern.IsMatch(c.Name)).ToList();
                if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(name))
                {
                    WriteError(new ErrorRecord(new ItemNotFoundException($"No open channel is named '{name}'."),
                        "ChannelNotFound", ErrorCategory.ObjectNotFound, name));
                }
                WriteObject(matches, enumerateCollection: true);
            }
        }
    }
}
