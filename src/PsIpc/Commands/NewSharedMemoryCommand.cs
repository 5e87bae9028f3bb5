using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.SharedMemory;

namespace PsIpc.Commands
{
    /// <summary>Creates a named shared memory segment (or with -Queue a message queue), or with -Open opens an existing one.</summary>
    [Cmdlet(VerbsCommon.New, "SharedMemory", DefaultParameterSetName = CreateSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(SharedMemorySegment), typeof(SharedMemoryQueue))]
    public sealed class NewSharedMemoryCommand : IpcCmdlet
    {
        private const string CreateSet = "Create";
        private const string OpenSet = "Open";

        [Parameter(Mandatory = true, Position = 0)]
        [ArgumentCompleter(typeof(SharedMemoryNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; } = string.Empty;

        [Parameter(Mandatory = true, Position = 1, ParameterSetName = CreateSet)]
        [ValidateRange(64L, 1099511627776L)]
        public long Size { get; set; }

        [Parameter(ParameterSetName = CreateSet)]
        public SwitchParameter Queue { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = OpenSet)]
        public SwitchParameter Open { get; set; }

        /// <summary>
        /// Replaces a segment or queue that already has the name (as Remove-SharedMemory, then create), such as one a
        /// script that crashed left behind. Processes that have the old one open keep using it until they close it.
        /// </summary>
        [Parameter(ParameterSetName = CreateSet)]
        public SwitchParameter Force { get; set; }

        protected override void EndProcessing()
        {
            try
            {
                SharedMemoryChannel channel;
                if (Open)
                {
                    if (!ShouldProcess(Name, "Open a shared memory segment")) return;
                    channel = SharedMemoryChannel.Open(Name);
                }
                else
                {
                    string what = Queue ? "Create a shared memory queue of " : "Create a shared memory segment of ";
                    if (!ShouldProcess(Name, (Force ? "Replace any segment of that name with a new one: " : string.Empty) + what + Size + " bytes")) return;
                    try
                    {
                        channel = SharedMemoryChannel.Create(Name, Size, Queue);
                    }
                    catch (IpcException e) when (Force && e.Kind == IpcErrorKind.SharedMemoryNameInUse)
                    {
                        WriteVerbose($"A segment named '{Name}' exists: removing it (-Force) to create a new one.");
                        SharedMemoryChannel.Remove(Name);
                        channel = SharedMemoryChannel.Create(Name, Size, Queue);
                    }
                }
                WriteVerbose($"{(Open ? "Opened" : "Created")} {ChannelActivity.Describe(channel)}: {channel.Capacity} bytes.");
                ChannelRegistry.Register(channel);
                RunspaceLifetime.Bind(channel, System.Management.Automation.Runspaces.Runspace.DefaultRunspace);
                WriteObject(channel);
            }
            catch (IpcException e)
            {
                ThrowIpcError(e);
            }
        }
    }
}
