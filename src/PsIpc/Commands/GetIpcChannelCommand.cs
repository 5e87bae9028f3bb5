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
        [ArgumentCompleter(typeof(ChannelListCompleter))]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[]? Name { get; set; }

        protected override void ProcessRecord() =>
            NameFilter.WriteMatches(this, ChannelRegistry.Snapshot(), Name, WildcardOptions.IgnoreCase,
                (channel, pattern) => pattern.IsMatch(channel.Name),
                name => new ErrorRecord(new ItemNotFoundException($"No open channel is named '{name}'."),
                    "ChannelNotFound", ErrorCategory.ObjectNotFound, name));
    }
}
