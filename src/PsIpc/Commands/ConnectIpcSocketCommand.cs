using System;
using System.Management.Automation;
using System.Security;
using PsIpc.Sockets;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Sockets;

namespace PsIpc.Commands
{
    /// <summary>Connects to a TCP, UDP or Unix domain socket server as a client; returns the channel.</summary>
    [Cmdlet(VerbsCommunications.Connect, "IpcSocket", DefaultParameterSetName = TcpSet)]
    [OutputType(typeof(SocketClientChannel), typeof(UdpClientChannel))]
    public sealed class ConnectIpcSocketCommand : IpcCmdlet
    {
        private const string TcpSet = "Tcp";
        private const string UnixSet = "Unix";
        private const string UdpSet = "Udp";

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
        public string? Path { get; set; }

        [Parameter]
        public SocketFraming Framing { get; set; } = SocketFraming.LengthPrefixed;

        [Parameter]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int MaxMessageSize { get; set; } = Transport.Framing.FrameHeader.DefaultMaxMessageSize;

        /// <summary>The server's shared secret (HMAC challenge, both ways) when it was started with -Secret.</summary>
        [Parameter(ParameterSetName = TcpSet)]
        [Parameter(ParameterSetName = UnixSet)]
        [SecretTransformation]
        [ValidateNotNull]
        public SecureString? Secret { get; set; }

        /// <summary>Speak TLS (a server started with -Certificate); its certificate must be trusted for -ComputerName.</summary>
        [Parameter(ParameterSetName = TcpSet)]
        public SwitchParameter UseTls { get; set; }

        /// <summary>Trust exactly the server certificate with this SHA-1 thumbprint (a self-signed one); implies -UseTls.</summary>
        [Parameter(ParameterSetName = TcpSet)]
        [ValidatePattern("^(?:[0-9A-Fa-f]{2}[: ]?){19}[0-9A-Fa-f]{2}$")]
        public string? CertificateThumbprint { get; set; }

        /// <summary>Talk UDP: each message one datagram to the server, each datagram from it one message.</summary>
        [Parameter(ParameterSetName = UdpSet, Mandatory = true)]
        public SwitchParameter Udp { get; set; }

        protected override void EndProcessing()
        {
            var options = new ChannelOptions { MaxMessageSize = MaxMessageSize };
            ErrorRecord? refusedSecret = SecretArgument.Refusal(Secret);
            if (refusedSecret != null)
            {
                ThrowTerminatingError(refusedSecret);
                return;
            }
            var security = new SocketSecurity
            {
                Secret = SecretArgument.ToKey(Secret),
                UseTls = UseTls || CertificateThumbprint != null,
                CertificateThumbprint = CertificateThumbprint,
            };
            try
            {
                // -Path is mandatory in the Unix set. The connect runs on a worker so that a long one shows progress.
                Deadline deadline = DeadlineFrom(TimeoutSeconds);
                string? unixPath = ParameterSetName == UnixSet ? SocketAddressParser.ResolvePath(SessionState, Path!) : null;
                string target = unixPath != null ? $"unix:{unixPath}" : $"{(Udp ? "udp" : "tcp")}:{ComputerName}:{Port}";
                WriteVerbose($"Connecting to {target} ({Framing} framing{(security.UseTls ? ", TLS" : string.Empty)}{(security.HasSecret ? ", shared secret" : string.Empty)}){(HasTimeout ? $", waiting up to {TimeoutSeconds} s" : string.Empty)}.");
                IpcChannel channel;
                using (IpcChannel.BeginConnectWait())
                {
                    channel = new WaitProgress(this, target, $"Connecting to {target}").Run(() => unixPath != null
                    ? SocketClientChannel.ConnectUnix(unixPath, Framing, deadline, CancelToken, options, security)
                    : Udp ? (IpcChannel)UdpClientChannel.Connect(ComputerName, Port, Framing, deadline, CancelToken, options)
                    : SocketClientChannel.ConnectTcp(ComputerName, Port, Framing, deadline, CancelToken, options, security), deadline, TimeoutSeconds, CancelToken);
                }
                WriteVerbose(ChannelActivity.Connected(channel));
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
