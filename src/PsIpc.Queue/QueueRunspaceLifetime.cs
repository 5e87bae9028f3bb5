using System;
using System.Management.Automation.Runspaces;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Queue
{
    /// <summary>
    /// As the module does for its channels: a queue channel is closed (flushed: its confirms awaited) when
    /// the runspace that opened it closes, so a thread job that ends without Close-IpcChannel loses nothing.
    /// </summary>
    internal static class QueueRunspaceLifetime
    {
        public static void Bind(IpcChannel channel, Runspace? runspace)
        {
            if (runspace == null) return;
            EventHandler<RunspaceStateEventArgs>? onStateChanged = null;
            onStateChanged = (sender, e) =>
            {
                RunspaceState state = e.RunspaceStateInfo.State;
                if (state != RunspaceState.Closing && state != RunspaceState.Closed && state != RunspaceState.Broken) return;
                runspace.StateChanged -= onStateChanged;
                try
                {
                    channel.Close(Deadline.After(channel.Options.CloseTimeout));
                }
                catch (IpcException)
                {
                    // The broker is away; closing released everything regardless.
                }
            };
            runspace.StateChanged += onStateChanged;
            channel.Closed += (_, __) => runspace.StateChanged -= onStateChanged;
        }
    }
}
