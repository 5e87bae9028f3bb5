using System;
using System.Management.Automation;
using System.Security;
using System.Security.Cryptography.X509Certificates;
using PsIpc.Handlers;
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
    public sealed class StartIpcSocketServerCommand : IpcCmdlet
    {
        private const string TcpSet = "Tcp";
        private const string UnixSet = "Unix";
        private const string UdpSet = "Udp";

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
        public string? Path { get; set; }

        [Parameter]
        public SocketFraming Framing { get; set; } = SocketFraming.LengthPrefixed;

        [Parameter]
        [ValidateNotNull]
        public ScriptBlock? ScriptBlock { get; set; }

        [Parameter]
        [ValidateRange(1, 1024)]
        public int ThrottleLimit { get; set; } = 8;

        /// <summary>Passed to -ScriptBlock after the message: its second, third... argument (param($message, $a, $b)).</summary>
        [Parameter]
        [Alias("Args")]
        [AllowNull]
        [AllowEmptyCollection]
        public object?[]? ArgumentList { get; set; }

        /// <summary>How deep -ScriptBlock's reply objects are serialized (CliXml, JSON), as Send-IpcMessage -Depth.</summary>
        [Parameter]
        [ValidateRange(1, 100)]
        public int Depth { get; set; } = 2;

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int MaxConnections { get; set; } = SocketServerChannel.DefaultMaxConnections;

        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int MaxMessageSize { get; set; } = Transport.Framing.FrameHeader.DefaultMaxMessageSize;

        /// <summary>A shared secret every client must prove it knows (HMAC challenge) before anything else.</summary>
        [Parameter(ParameterSetName = TcpSet)]
        [Parameter(ParameterSetName = UnixSet)]
        [SecretTransformation]
        [ValidateNotNull]
        public SecureString? Secret { get; set; }

        /// <summary>Turns TLS on: the server's certificate, with its private key.</summary>
        [Parameter(ParameterSetName = TcpSet)]
        [Parameter(ParameterSetName = UnixSet)]
        [ValidateNotNull]
        public X509Certificate2? Certificate { get; set; }

        [Parameter(ParameterSetName = TcpSet)]
        [Parameter(ParameterSetName = UnixSet)]
        [ValidateRange(1, 3600)]
        public int HandshakeTimeoutSeconds { get; set; } = 10;

        [Parameter(ParameterSetName = TcpSet)]
        [Parameter(ParameterSetName = UnixSet)]
        [ValidateRange(0, int.MaxValue)]
        public int IdleTimeoutSeconds { get; set; } = 300;

        /// <summary>Serve UDP instead of TCP: each datagram is one message, a reply one datagram to its sender.</summary>
        [Parameter(ParameterSetName = UdpSet, Mandatory = true)]
        public SwitchParameter Udp { get; set; }

        protected override void EndProcessing()
        {
            var options = new ChannelOptions
            {
                MaxMessageSize = MaxMessageSize,
                HandshakeTimeout = TimeSpan.FromSeconds(HandshakeTimeoutSeconds),
                IdleTimeout = TimeSpan.FromSeconds(IdleTimeoutSeconds),
            };
            ErrorRecord? refusedSecret = SecretArgument.Refusal(Secret);
            if (refusedSecret != null)
            {
                ThrowTerminatingError(refusedSecret);
                return;
            }
            SocketSecurity security;
            try
            {
                security = new SocketSecurity { Secret = SecretArgument.ToKey(Secret), Certificate = Certificate };
                security.ValidateForServer();
            }
            catch (ArgumentException e)
            {
                ThrowTerminatingError(new ErrorRecord(e, "CertificateWithoutPrivateKey", ErrorCategory.InvalidArgument, Certificate));
                return;
            }
            IpcChannel server;
            try
            {
                if (ParameterSetName == UnixSet)
                {
                    string path = SocketAddressParser.ResolvePath(SessionState, Path!); // -Path is mandatory in the Unix set
                    if (!ShouldProcess(path, "Start a Unix domain socket server")) return;
                    server = SocketServerChannel.ListenUnix(null, path, Framing, MaxConnections, options, security);
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
                    if (Udp)
                    {
                        if (!ShouldProcess($"{Address} UDP port {Port}", "Start a UDP socket server")) return;
                        server = UdpServerChannel.Listen(null, address, Port, Framing, MaxConnections, options);
                    }
                    else
                    {
                        if (!ShouldProcess($"{Address} port {Port}", "Start a TCP socket server")) return;
                        server = SocketServerChannel.ListenTcp(null, address, Port, Framing, MaxConnections, options, security);
                    }
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
                    // A Line/Raw client that shuts down its sending side still gets its replies.
                    if (server is ServerChannel streamServer) streamServer.KeepsHalfClosedConnections = true;
                    RequestHandler.Attach(server, ScriptBlock, new HandlerSettings
                    {
                        ThrottleLimit = ThrottleLimit,
                        Depth = Depth,
                        LanguageMode = SessionState.LanguageMode,
                        CallerState = SessionState,
                        ArgumentList = ArgumentList ?? Array.Empty<object?>(),
                        TextReplies = ((ISocketServer)server).Framing != SocketFraming.LengthPrefixed,
                    });
                }
                catch (ArgumentException e)
                {
                    server.Close(Deadline.After(TimeSpan.Zero));
                    ThrowTerminatingError(new ErrorRecord(e, "InvalidHandler", ErrorCategory.InvalidArgument, ScriptBlock)); // e.g. $using:a[0]
                    return;
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
