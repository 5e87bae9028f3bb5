using System;
using System.Management.Automation;
using PsIpc.Sockets;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Sockets;

namespace PsIpc.Commands
{
    // Start-IpcSocketServer -Udp: a UDP server, each datagram one message (docs/protocol.md, section 11).
    public sealed partial class StartIpcSocketServerCommand
    {
        private const string UdpSet = "Udp";

        /// <summary>Serve UDP instead of TCP: each datagram is one message, a reply one datagram to its sender.</summary>
        [Parameter(ParameterSetName = UdpSet, Mandatory = true)]
        public SwitchParameter Udp { get; set; }

        private void StartUdp()
        {
            var options = new ChannelOptions { MaxMessageSize = MaxMessageSize };
            System.Net.IPAddress address;
            try
            {
                address = SocketAddressParser.Parse(Address);
            }
            catch (ArgumentException e)
            {
                ThrowTerminatingError(new ErrorRecord(e, "InvalidAddress", ErrorCategory.InvalidArgument, Address));
                return;
            }
            if (!ShouldProcess($"{Address} UDP port {Port}", "Start a UDP socket server")) return;
            UdpServerChannel server;
            try
            {
                server = UdpServerChannel.Listen(null, address, Port, Framing, MaxConnections, options);
            }
            catch (IpcException e)
            {
                ThrowIpcError(e);
                return;
            }
            if (ScriptBlock != null)
            {
                try
                {
                    server.Handler = new SocketRequestHandler(server, ScriptBlock, ThrottleLimit, SessionState.LanguageMode);
                }
                catch
                {
                    server.Close(Deadline.After(TimeSpan.Zero));
                    throw;
                }
            }
            ChannelRegistry.Register(server);
            RunspaceLifetime.Bind(server, System.Management.Automation.Runspaces.Runspace.DefaultRunspace);
            WriteObject(server);
        }
    }
}
