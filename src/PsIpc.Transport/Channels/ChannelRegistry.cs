using System;
using System.Collections.Generic;
using System.Linq;

namespace PsIpc.Transport.Channels
{
    /// <summary>
    /// The channels open in this process, by name: what Get-IpcChannel lists, what tab completion offers,
    /// and what is flushed and closed when the process exits, so that a job that ends without closing its
    /// channel still delivers everything it sent.
    /// </summary>
    public static class ChannelRegistry
    {
        private static readonly object s_gate = new object();
        private static readonly List<IpcChannel> s_channels = new List<IpcChannel>();
        private static bool s_hooked;

        public static void Register(IpcChannel channel)
        {
            lock (s_gate)
            {
                if (!s_hooked)
                {
                    AppDomain.CurrentDomain.ProcessExit += (_, __) => CloseAll(TimeSpan.FromSeconds(10));
                    s_hooked = true;
                }
                s_channels.Add(channel);
            }
            channel.Closed += (_, __) => Unregister(channel);
        }

        public static IReadOnlyList<IpcChannel> Snapshot()
        {
            lock (s_gate) return s_channels.ToArray();
        }

        public static IpcChannel Find(string name)
        {
            lock (s_gate)
            {
                return s_channels.LastOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase));
            }
        }

        private static void Unregister(IpcChannel channel)
        {
            lock (s_gate) s_channels.Remove(channel);
        }

        private static void CloseAll(TimeSpan timeout)
        {
            Deadline deadline = Deadline.After(timeout);
            foreach (IpcChannel channel in Snapshot())
            {
                try { channel.Close(deadline); } catch (Exception) { } // the process is exiting: best effort
            }
        }
    }
}
