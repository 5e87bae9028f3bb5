using System.Linq;
using System.Management.Automation;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Sockets;

namespace PsIpc.Commands
{
    /// <summary>Lists the socket servers running in this process.</summary>
    [Cmdlet(VerbsCommon.Get, "IpcSocketServer")]
    [OutputType(typeof(SocketServerChannel))]
    public sealed class GetIpcSocketServerCommand : PSCmdlet
    {
        [Parameter(Position = 0, ValueFromPipeline = true)]
        [ArgumentCompleter(typeof(ChannelNameCompleter))]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[] Name { get; set; }

        protected override void ProcessRecord()
        {
            var servers = ChannelRegistry.Snapshot().OfType<SocketServerChannel>().ToList();
            if (Name == null)
            {
                WriteObject(servers, enumerateCollection: true);
                return;
            }
            foreach (string name in Name)
            {
                var pattern = WildcardPattern.Get(name, WildcardOptions.IgnoreCase);
                var matches = servers.Where(s => pattern.IsMatch(s.Name) || pattern.IsMatch(s.Address)).ToList();
                if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(name))
                {
                    WriteError(new ErrorRecord(new ItemNotFoundException($"No socket server of this process is named '{name}'."),
                        "SocketServerNotFound", ErrorCategory.ObjectNotFound, name));
                }
                WriteObject(matches, enumerateCollection: true);
            }
        }
    }
}
