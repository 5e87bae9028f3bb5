using System.Management.Automation;
using PsIpc.Handlers;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Commands
{
    /// <summary>
    /// Creates the server end of a named pipe, or with -Connect the client end. With -ScriptBlock the server
    /// answers by itself, as Start-IpcSocketServer -ScriptBlock does.
    /// </summary>
    [Cmdlet(VerbsCommon.New, "IpcPipe", DefaultParameterSetName = ServerSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(PipeServerChannel), ParameterSetName = new[] { ServerSet })]
    [OutputType(typeof(PipeClientChannel), ParameterSetName = new[] { ClientSet })]
    public sealed class NewIpcPipeCommand : IpcCmdlet
    {
        private const string ServerSet = "Server";
        private const string ClientSet = "Client";

        [Parameter(Position = 0, ParameterSetName = ServerSet)]
        [Parameter(Position = 0, ParameterSetName = ClientSet, Mandatory = true)]
        [ArgumentCompleter(typeof(PipeNameCompleter))]
        [ValidateNotNullOrEmpty]
        public string? Name { get; set; }

        [Parameter(ParameterSetName = ClientSet, Mandatory = true)]
        public SwitchParameter Connect { get; set; }

        [Parameter(ParameterSetName = ClientSet)]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        /// <summary>Clients over the server's lifetime; 1 by default, without limit with -ScriptBlock (it serves until closed).</summary>
        [Parameter(ParameterSetName = ServerSet)]
        [ValidateRange(1, int.MaxValue)]
        public int MaxClients { get; set; } = 1;

        /// <summary>Answers each message: it gets the message as its first argument, its output is the reply.</summary>
        [Parameter(ParameterSetName = ServerSet)]
        [ValidateNotNull]
        public ScriptBlock? ScriptBlock { get; set; }

        [Parameter(ParameterSetName = ServerSet)]
        [ValidateRange(1, 1024)]
        public int ThrottleLimit { get; set; } = 8;

        /// <summary>Passed to -ScriptBlock after the message: its second, third... argument (param($message, $a, $b)).</summary>
        [Parameter(ParameterSetName = ServerSet)]
        [Alias("Args")]
        [AllowNull]
        [AllowEmptyCollection]
        public object?[]? ArgumentList { get; set; }

        /// <summary>How deep -ScriptBlock's reply objects are serialized, as Send-IpcMessage -Depth.</summary>
        [Parameter(ParameterSetName = ServerSet)]
        [ValidateRange(1, 100)]
        public int Depth { get; set; } = 2;

        /// <summary>
        /// LengthPrefixed (the default) speaks the PsIpc protocol. Line (one UTF-8 text message a line) and Raw
        /// (bytes as they come) talk to pipes served or used by programs that know nothing of PsIpc.
        /// </summary>
        [Parameter]
        public Transport.Sockets.SocketFraming Framing { get; set; } = Transport.Sockets.SocketFraming.LengthPrefixed;

        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int MaxMessageSize { get; set; } = Transport.Framing.FrameHeader.DefaultMaxMessageSize;

        protected override void EndProcessing()
        {
            var options = new ChannelOptions { MaxMessageSize = MaxMessageSize };
            try
            {
                IpcChannel channel;
                if (Connect)
                {
                    if (!ShouldProcess(Name, "Connect to a named pipe")) return;
                    string name = Name!; // mandatory with -Connect
                    Deadline deadline = DeadlineFrom(TimeoutSeconds);
                    WriteVerbose($"Connecting to pipe '{name}'{(HasTimeout ? $" (waiting up to {TimeoutSeconds} s for its server)" : " (waiting for its server without a timeout)")}.");
                    using (IpcChannel.BeginConnectWait())
                    {
                        channel = new WaitProgress(this, name, $"Connecting to pipe '{name}'")
                            .Run(() => PipeClientChannel.Connect(name, Framing, deadline, CancelToken, options), deadline, TimeoutSeconds, CancelToken);
                    }
                    WriteVerbose(ChannelActivity.Connected(channel));
                }
                else
                {
                    string name = Name ?? Transport.Pipes.PipeName.NewUniqueName();
                    if (!ShouldProcess(name, "Create a named pipe server")) return;
                    // A handler serves until the pipe is closed, unless told how many clients to take.
                    bool serveUntilClosed = ScriptBlock != null && !MyInvocation.BoundParameters.ContainsKey(nameof(MaxClients));
                    channel = new PipeServerChannel(name, serveUntilClosed ? int.MaxValue : MaxClients, options, Framing);
                    if (ScriptBlock != null) AttachHandler(channel, ScriptBlock);
                    WriteVerbose($"Listening on {ChannelActivity.Describe(channel)} for {(serveUntilClosed || MaxClients == int.MaxValue ? "any number of clients" : $"{MaxClients} client(s)")}.");
                }
                ChannelRegistry.Register(channel, System.Management.Automation.Runspaces.Runspace.DefaultRunspace?.InstanceId);
                RunspaceLifetime.Bind(channel, System.Management.Automation.Runspaces.Runspace.DefaultRunspace);
                WriteObject(channel);
            }
            catch (IpcException e)
            {
                ReportIpcError(e);
            }
            catch (System.OperationCanceledException)
            {
                // Stopped by Ctrl+C: PowerShell reports the stop itself.
            }
        }

        private void AttachHandler(IpcChannel server, ScriptBlock handler)
        {
            try
            {
                RequestHandler.Attach(server, handler, new HandlerSettings
                {
                    ThrottleLimit = ThrottleLimit,
                    Depth = Depth,
                    LanguageMode = SessionState.LanguageMode,
                    CallerState = SessionState,
                    ArgumentList = ArgumentList ?? System.Array.Empty<object?>(),
                    TextReplies = Framing != Transport.Sockets.SocketFraming.LengthPrefixed,
                });
                if (Framing != Transport.Sockets.SocketFraming.LengthPrefixed) ((ServerChannel)server).KeepsHalfClosedConnections = true;
            }
            catch (System.ArgumentException e)
            {
                server.Close(Deadline.After(System.TimeSpan.Zero));
                ThrowTerminatingError(new ErrorRecord(e, "InvalidHandler", ErrorCategory.InvalidArgument, handler)); // e.g. $using:a[0]
            }
            catch
            {
                server.Close(Deadline.After(System.TimeSpan.Zero));
                throw;
            }
        }
    }
}
