using System;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Sockets;

namespace PsIpc.Commands
{
    /// <summary>
    /// Stops socket servers: lets running handlers finish, says goodbye to every client, stops listening
    /// and deletes the Unix socket file.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Stop, "IpcSocketServer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(void))]
    public sealed class StopIpcSocketServerCommand : IpcCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [ChannelTransformation]
        [ArgumentCompleter(typeof(SocketServerNameCompleter))]
        [ValidateNotNull]
        public ISocketServer[] Server { get; set; } = Array.Empty<ISocketServer>();

        /// <summary>How long to wait for running handlers and queued replies; default 30 s.</summary>
        [Parameter]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        protected override void ProcessRecord()
        {
            foreach (ISocketServer server in Server)
            {
                if (!ShouldProcess(server.Address, "Stop the socket server")) continue;
                Deadline deadline = HasTimeout ? DeadlineFrom(TimeoutSeconds) : Deadline.After(server.Options.CloseTimeout);
                CloseCancellably((Transport.Channels.IpcChannel)server, deadline);
            }
        }
    }
}
