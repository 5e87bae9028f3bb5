using System.Linq;
using System.Management.Automation;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Sockets;

namespace PsIpc.Commands
{
    /// <summary>Lists the socket servers running in this process.</summary>
    [Cmdlet(VerbsCommon.Get, "IpcSocketServer")]
    [OutputType(typeof(SocketServerChannel), typeof(UdpServerChannel))]
    public sealed class GetIpcSocketServerCommand : PSCmdlet
    {
        [Parameter(Position = 0, ValueFromPipeline = true)]
        [ArgumentCompleter(typeof(SocketServerNameCompleter))]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[]? Name { get; set; }

        protected override void ProcessRecord() =>
            NameFilter.WriteMatches(this, ChannelRegistry.Snapshot().OfType<ISocketServer>().ToList(), Name, WildcardOptions.IgnoreCase,
                (server, pattern) => pattern.IsMatch(server.Name) || pattern.IsMatch(server.Address),
                name => new ErrorRecord(new ItemNotFoundException($"No socket server of this process is named '{name}'."),
                    "SocketServerNotFound", ErrorCategory.ObjectNotFound, name));
    }
}
