using System;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.SharedMemory;

namespace PsIpc.Commands
{
    /// <summary>
    /// Deletes segments by name, so that nobody can open them any more; processes that have one open keep using it
    /// until they close it. Given a segment object (-SharedMemory, or piped), it also closes it in this process.
    /// -SharedMemory is one object, not an array, so that a piped segment binds to it without coercion, and -Name
    /// takes pipeline input by value, not by property name (a segment has a Name property too): Get-SharedMemory's
    /// objects bind to -Name through their ToString(), which is the name.
    /// </summary>
    [Cmdlet(VerbsCommon.Remove, "SharedMemory", DefaultParameterSetName = NameSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(void))]
    public sealed class RemoveSharedMemoryCommand : IpcCmdlet
    {
        private const string NameSet = "Name";
        private const string ObjectSet = "SharedMemory";

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = NameSet)]
        [ArgumentCompleter(typeof(SharedMemoryNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string[] Name { get; set; } = Array.Empty<string>();

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = ObjectSet)]
        [ValidateNotNull]
        public SharedMemoryChannel? SharedMemory { get; set; }

        protected override void ProcessRecord()
        {
            if (ParameterSetName == ObjectSet && SharedMemory is SharedMemoryChannel channel)
            {
                if (!ShouldProcess(channel.Name, "Remove shared memory")) return;
                channel.Close(Deadline.After(channel.Options.CloseTimeout));
                Remove(channel.Name);
                return;
            }
            foreach (string name in Name)
            {
                if (ShouldProcess(name, "Remove shared memory")) Remove(name);
            }
        }

        private void Remove(string name)
        {
            try
            {
                SharedMemoryChannel.Remove(name);
            }
            catch (IpcException e)
            {
                WriteIpcError(e); // like Remove-Item: one name that fails does not stop the others
            }
        }
    }
}
