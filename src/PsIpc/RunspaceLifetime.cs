using System;
using System.Management.Automation.Runspaces;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc
{
    /// <summary>
    /// Ties a channel to the runspace that created it: when that runspace closes (a thread job or a
    /// ForEach-Object -Parallel worker ending without Close-IpcChannel), the channel is flushed and closed,
    /// so the peer sees the end of the stream and nothing is left behind. Process exit is covered by
    /// <see cref="ChannelRegistry"/>.
    /// </summary>
    internal static class RunspaceLifetime
    {
        public static void Bind(IpcChannel channel, Runspace? runspace)
        {
            if (runspace == null) return;
            EventHandler<RunspaceStateEventArgs>? onStateChanged = null;
            onStateChanged = (sender, e) =>
            {
                RunspaceState state = e.RunspaceStateInfo.State;
                if (state == RunspaceState.Closing || state == RunspaceState.Closed || state == RunspaceState.Broken)
                {
                    runspace.StateChanged -= onStateChanged;
                    try
                    {
                        channel.Close(Deadline.After(channel.Options.CloseTimeout));
                    }
                    catch (IpcException)
                    {
                        // The peer is gone already; closing released everything regardless.
                    }
                }
            };
            runspace.StateChanged += onStateChanged;
            channel.Closed += (_, __) => runspace.StateChanged -= onStateChanged;
        }
    }
}
