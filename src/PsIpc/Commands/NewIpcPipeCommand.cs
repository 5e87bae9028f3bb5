using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Commands
{
    /// <summary>Creates the server end of a named pipe, or with -Connect the client end.</summary>
    [Cmdlet(VerbsCommon.New, "IpcPipe", DefaultParameterSetName = ServerSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(PipeServerChannel), ParameterSetName = new[] { ServerSet })]
    [OutputType(typeof(PipeClientChannel), ParameterSetName = new[] { ClientSet })]
    public sealed class NewIpcPipeCommand : IpcCmdlet
    {
        private const string ServerSet = "Server";
        private const string ClientSet = "Client";

        [Parameter(Position = 0, ParameterSetName = ServerSet)]
        [Parameter(Position = 0, ParameterSetName = ClientSet, Mandatory = true)]
        [ArgumentCompleter(typeof(PipeNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; }

        [Parameter(ParameterSetName = ClientSet, Mandatory = true)]
        public SwitchParameter Connect { get; set; }

        [Parameter(ParameterSetName = ClientSet)]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        [Parameter(ParameterSetName = ServerSet)]
        [ValidateRange(1, int.MaxValue)]
        public int MaxClients { get; set; } = 1;

        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int MaxMessageSize { get; set; } = Transport.Framing.FrameHeader.DefaultMaxMessageSize;

        protected override void EndProcessing()
        {
            var options = new ChannelOptions { MaxMessageSize = MaxMessageSize };
            try
            {
                IpcChannel channel;
                if (Connect)
                {
                    if (!ShouldProcess(Name, "Connect to a named pipe")) return;
                    channel = PipeClientChannel.Connect(Name, DeadlineFrom(TimeoutSeconds), CancelToken, options);
                }
                else
                {
                    string name = Name ?? Transport.Pipes.PipeName.NewUniqueName();
                    if (!ShouldProcess(name, "Create a named pipe server")) return;
                    channel = new PipeServerChannel(name, MaxClients, options);
                }
                ChannelRegistry.Register(channel, System.Management.Automation.Runspaces.Runspace.DefaultRunspace?.InstanceId);
                RunspaceLifetime.Bind(channel, System.Management.Automation.Runspaces.Runspace.DefaultRunspace);
                WriteObject(channel);
            }
            catch (IpcException e)
            {
                ReportIpcError(e);
            }
            catch (System.OperationCanceledException)
            {
                // Stopped by Ctrl+C: PowerShell reports the stop itself.
            }
        }
    }
}
