using System;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Sockets;

namespace PsIpc.Commands
{
    // Connect-IpcSocket -Udp: a connected UDP socket as a client channel (docs/protocol.md, section 11).
    public sealed partial class ConnectIpcSocketCommand
    {
        private const string UdpSet = "Udp";

        /// <summary>Talk UDP: each message one datagram to the server, each datagram from it one message.</summary>
        [Parameter(ParameterSetName = UdpSet, Mandatory = true)]
        public SwitchParameter Udp { get; set; }

        private void ConnectUdp()
        {
            var options = new ChannelOptions { MaxMessageSize = MaxMessageSize };
            try
            {
                UdpClientChannel channel = UdpClientChannel.Connect(ComputerName, Port, Framing, DeadlineFrom(TimeoutSeconds), CancelToken, options);
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
