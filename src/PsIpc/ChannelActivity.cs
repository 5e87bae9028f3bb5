using System.Globalization;
using System.Management.Automation;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Sockets;

namespace PsIpc
{
    /// <summary>
    /// What -Verbose tells of a channel: how it is described on connect and close, and, while Receive-IpcMessage waits
    /// on a server, the clients it accepted and lost and the errors and drops it counted since the last look. The
    /// accept loops run in the background and may not write to the pipeline, so the receiving cmdlet compares the
    /// channel's counters between batches (a few reads) and writes what changed.
    /// </summary>
    internal sealed class ChannelActivity
    {
        private readonly IpcChannel _channel;
        private long _accepted, _errors, _dropped;
        private int _peers;

        public ChannelActivity(IpcChannel channel)
        {
            _channel = channel;
            _accepted = Accepted(channel);
            _peers = channel.PeerCount;
            _errors = channel.Errors;
            _dropped = channel.Dropped;
        }

        /// <summary>"pipe server 'jobs' (/tmp/CoreFxPipe_jobs)".</summary>
        public static string Describe(IpcChannel channel)
        {
            string what = channel is Transport.SharedMemory.SharedMemoryQueue ? "shared memory queue"
                : channel is Transport.SharedMemory.SharedMemorySegment ? "shared memory segment"
                : $"{channel.Kind.ToString().ToLowerInvariant()} {channel.Role.ToString().ToLowerInvariant()}";
            return $"{what} '{channel.Name}' ({channel.Address})";
        }

        /// <summary>The counters a close reports.</summary>
        public static string Counters(IpcChannel channel) => string.Format(CultureInfo.InvariantCulture,
            "sent {0} messages ({1} bytes), received {2} ({3} bytes), {4} errors, {5} dropped",
            channel.MessagesSent, channel.BytesSent, channel.MessagesReceived, channel.BytesReceived, channel.Errors, channel.Dropped);

        /// <summary>What a connect reports once connected.</summary>
        public static string Connected(IpcChannel channel)
        {
            string peer = channel.PeerProcessId > 0 ? $"server process {channel.PeerProcessId}" : "server process unknown (no PsIpc hello)";
            return $"Connected to {Describe(channel)}: {peer}, {(channel.IsAuthenticated ? "authenticated" : "not authenticated")}.";
        }

        /// <summary>Writes what changed since the last call: clients accepted and gone, errors, drops.</summary>
        public void Report(Cmdlet cmdlet)
        {
            long accepted = Accepted(_channel);
            int peers = _channel.PeerCount;
            long errors = _channel.Errors;
            long dropped = _channel.Dropped;
            if (accepted > _accepted)
            {
                cmdlet.WriteVerbose($"'{_channel.Name}' accepted {accepted - _accepted} client(s); {peers} connected now, {accepted} since it started.");
            }
            long left = _peers + (accepted - _accepted) - peers;
            if (left > 0) cmdlet.WriteVerbose($"{left} client(s) left '{_channel.Name}'; {peers} connected now.");
            if (errors > _errors)
            {
                cmdlet.WriteVerbose($"'{_channel.Name}' counted {errors - _errors} more error(s) ({errors} in all){LastError(_channel)}.");
            }
            if (dropped > _dropped)
            {
                cmdlet.WriteVerbose($"'{_channel.Name}' dropped {dropped - _dropped} more message(s) ({dropped} in all){LastDrop(_channel)}.");
            }
            _accepted = accepted;
            _peers = peers;
            _errors = errors;
            _dropped = dropped;
        }

        private static long Accepted(IpcChannel channel) =>
            channel is ServerChannel server ? server.ConnectionsAccepted
            : channel is UdpServerChannel udp ? udp.ConnectionsAccepted
            : 0;

        private static string LastError(IpcChannel channel) =>
            channel is ServerChannel server && server.LastConnectionError != null ? ": the last, " + server.LastConnectionError.Message : string.Empty;

        private static string LastDrop(IpcChannel channel) =>
            channel is UdpServerChannel server && server.LastDropError != null ? ": the last, " + server.LastDropError.Message
            : channel is UdpClientChannel client && client.LastError != null ? ": the last, " + client.LastError.Message
            : string.Empty;
    }
}
