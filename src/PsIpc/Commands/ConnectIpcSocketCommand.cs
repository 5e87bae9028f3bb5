using System;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Sockets;

namespace PsIpc.Commands
{
    /// <summary>Connects to a TCP, UDP or Unix domain socket server as a client; returns the channel.</summary>
    [Cmdlet(VerbsCommunications.Connect, "IpcSocket", DefaultParameterSetName = TcpSet)]
    [OutputType(typeof(SocketClientChannel), typeof(UdpClientChannel))]
    public sealed partial class ConnectIpcSocketCommand : IpcCmdlet
    {
        private const string TcpSet = "Tcp";
        private const string UnixSet = "Unix";

        [Parameter(ParameterSetName = TcpSet)]
        [Parameter(ParameterSetName = UdpSet)]
        [Alias("HostName", "cn")]
        [ValidateNotNullOrEmpty]
        public string ComputerName { get; set; } = "localhost";

        [Parameter(ParameterSetName = TcpSet, Mandatory = true, Position = 0)]
        [Parameter(ParameterSetName = UdpSet, Mandatory = true, Position = 0)]
        [ValidateRange(1, 65535)]
        public int Port { get; set; }

        [Parameter(ParameterSetName = UnixSet, Mandatory = true)]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; }

        [Parameter]
        public SocketFraming Framing { get; set; } = SocketFraming.LengthPrefixed;

        [Parameter]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int MaxMessageSize { get; set; } = Transport.Framing.FrameHeader.DefaultMaxMessageSize;

        protected override void EndProcessing()
        {
            if (ParameterSetName == UdpSet)
            {
                ConnectUdp();
                return;
            }
            var options = new ChannelOptions { MaxMessageSize = MaxMessageSize };
            try
            {
                SocketClientChannel channel = ParameterSetName == UnixSet
                    ? SocketClientChannel.ConnectUnix(SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path), Framing, DeadlineFrom(TimeoutSeconds), CancelToken, options)
                    : SocketClientChannel.ConnectTcp(ComputerName, Port, Framing, DeadlineFrom(TimeoutSeconds), CancelToken, options);
                ChannelRegistry.Register(channel);
                RunspaceLifetime.Bind(channel, System.Management.Automation.Runspaces.Runspace.DefaultRunspace);
                WriteObject(channel);
            }
            catch (IpcException e)
            {
                ReportIpcError(e);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: PowerShell reports the stop itself.
            }
        }
    }
}
