using System;
using System.Management.Automation;
using PsIpc.Sockets;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Sockets;

namespace PsIpc.Commands
{
    /// <summary>
    /// Starts a TCP, UDP or Unix domain socket server that serves many clients in the background and returns at
    /// once. With -ScriptBlock each message is handled on a pool of runspaces and the output is the reply.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "IpcSocketServer", DefaultParameterSetName = TcpSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(SocketServerChannel), typeof(UdpServerChannel))]
    public sealed partial class StartIpcSocketServerCommand : IpcCmdlet
    {
        private const string TcpSet = "Tcp";
        private const string UnixSet = "Unix";

        [Parameter(ParameterSetName = TcpSet, Position = 0)]
        [Parameter(ParameterSetName = UdpSet, Position = 0)]
        [ValidateRange(0, 65535)]
        public int Port { get; set; }

        [Parameter(ParameterSetName = TcpSet)]
        [Parameter(ParameterSetName = UdpSet)]
        [ValidateNotNullOrEmpty]
        public string Address { get; set; } = "127.0.0.1";

        [Parameter(ParameterSetName = UnixSet, Mandatory = true)]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; }

        [Parameter]
        public SocketFraming Framing { get; set; } = SocketFraming.LengthPrefixed;

        [Parameter]
        [ValidateNotNull]
        public ScriptBlock ScriptBlock { get; set; }

        [Parameter]
        [ValidateRange(1, 1024)]
        public int ThrottleLimit { get; set; } = 8;

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int MaxConnections { get; set; } = SocketServerChannel.DefaultMaxConnections;

        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int MaxMessageSize { get; set; } = Transport.Framing.FrameHeader.DefaultMaxMessageSize;

        protected override void EndProcessing()
        {
            if (ParameterSetName == UdpSet)
            {
                StartUdp();
                return;
            }
            var options = new ChannelOptions { MaxMessageSize = MaxMessageSize };
            SocketServerChannel server;
            try
            {
                if (ParameterSetName == UnixSet)
                {
                    string path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
                    if (!ShouldProcess(path, "Start a Unix domain socket server")) return;
                    server = SocketServerChannel.ListenUnix(null, path, Framing, MaxConnections, options);
                }
                else
                {
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
                    if (!ShouldProcess($"{Address} port {Port}", "Start a TCP socket server")) return;
                    server = SocketServerChannel.ListenTcp(null, address, Port, Framing, MaxConnections, options);
                }
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
