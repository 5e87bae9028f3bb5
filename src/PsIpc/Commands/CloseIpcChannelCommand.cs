using System;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Commands
{
    /// <summary>Flushes what was sent, says goodbye to the peer(s) and releases the channel.</summary>
    [Cmdlet(VerbsCommon.Close, "IpcChannel", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(void))]
    public sealed class CloseIpcChannelCommand : IpcCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [ChannelTransformation]
        [ArgumentCompleter(typeof(ChannelNameCompleter))]
        [ValidateNotNull]
        public IpcChannel[] Channel { get; set; } = Array.Empty<IpcChannel>();

        /// <summary>How long to wait for queued messages to be written; default 30 s.</summary>
        [Parameter]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        protected override void ProcessRecord()
        {
            foreach (IpcChannel channel in Channel)
            {
                if (!ShouldProcess(ChannelActivity.Describe(channel), "Close the channel")) continue;
                Deadline deadline = HasTimeout ? DeadlineFrom(TimeoutSeconds) : Deadline.After(channel.Options.CloseTimeout);
                CloseCancellably(channel, deadline);
            }
        }
    }
}
