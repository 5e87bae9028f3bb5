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
        private static readonly Dictionary<IpcChannel, object> s_owners = new Dictionary<IpcChannel, object>();
        private static bool s_hooked;

        /// <param name="owner">Who opened it (the module passes its runspace's id), to resolve names that
        /// several channels of this process share, e.g. a server and a thread job's client.</param>
        public static void Register(IpcChannel channel, object? owner = null)
        {
            lock (s_gate)
            {
                if (!s_hooked)
                {
                    AppDomain.CurrentDomain.ProcessExit += (_, __) => CloseAll(TimeSpan.FromSeconds(10));
                    s_hooked = true;
                }
                s_channels.Add(channel);
                if (owner != null) s_owners[channel] = owner;
            }
            channel.Closed += (_, __) => Unregister(channel);
        }

        public static IReadOnlyList<IpcChannel> Snapshot()
        {
            lock (s_gate) return s_channels.ToArray();
        }

        /// <summary>
        /// The open channel called <paramref name="name"/> (exact case first, then any case). When several
        /// share the name, the one <paramref name="owner"/> opened; null when there is none, and an
        /// <see cref="ArgumentException"/> when the name stays ambiguous.
        /// </summary>
        public static IpcChannel? Find(string name, object? owner = null)
        {
            lock (s_gate)
            {
                List<IpcChannel> matches = s_channels.Where(c => string.Equals(c.Name, name, StringComparison.Ordinal)).ToList();
                if (matches.Count == 0)
                {
                    matches = s_channels.Where(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase)).ToList();
                }
                if (matches.Count <= 1) return matches.FirstOrDefault();
                List<IpcChannel> mine = owner == null
                    ? new List<IpcChannel>()
                    : matches.Where(c => s_owners.TryGetValue(c, out object o) && Equals(o, owner)).ToList();
                if (mine.Count == 1) return mine[0];
                string roles = string.Join(", ", matches.Select(c => c.Role.ToString()));
                throw new ArgumentException(
                    $"{matches.Count} open channels are named '{name}' ({roles}); pass the channel object instead of its name.");
            }
        }

        private static void Unregister(IpcChannel channel)
        {
            lock (s_gate)
            {
                s_channels.Remove(channel);
                s_owners.Remove(channel);
            }
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
