using System;
using System.Linq;
using System.Management.Automation;
using PsIpc.Events;
using PsIpc.Handlers;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Commands
{
    /// <summary>
    /// Raises a PowerShell engine event for each message that arrives on a channel, as Register-ObjectEvent and
    /// Register-EngineEvent do for .NET and engine events: -Action runs a script block per message, otherwise the
    /// events wait in the event queue for Wait-Event / Get-Event. $Event.MessageData is the decoded message.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Register, "IpcMessageEvent", DefaultParameterSetName = QueueSet)]
    [OutputType(typeof(PSEventJob))]
    public sealed class RegisterIpcMessageEventCommand : IpcCmdlet
    {
        private const string QueueSet = "Queue";
        private const string ActionSet = "Action";
        private const string ForwardSet = "Forward";

        // The engine binds the action to a module of its own and sets $Event & co there. The wrapper runs the user's
        // action (bound to that module too) in the same scope; a throw is kept by the subscription and written as a
        // non-terminating error instead of failing the job (a failed event job silently drops every later event);
        // then it says it is done. Assignments, not method calls, so that it works in every language mode.
        private const string ActionWrapper =
            "try { . $" + IpcMessageSubscription.ActionVariable + " @args } " +
            "catch { $" + IpcMessageSubscription.FailedVariable + " = $_; Write-Error -ErrorRecord $_ -ErrorAction Continue } " +
            "finally { $" + IpcMessageSubscription.DoneVariable + " = $Event }";

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [ChannelTransformation]
        [ArgumentCompleter(typeof(ReceivingChannelCompleter))]
        [ValidateNotNull]
        public IpcChannel Channel { get; set; } = null!; // mandatory: bound before ProcessRecord

        [Parameter(Position = 1)]
        [ValidateNotNullOrEmpty]
        public string SourceIdentifier { get; set; } = Guid.NewGuid().ToString();

        [Parameter(Mandatory = true, Position = 2, ParameterSetName = ActionSet)]
        [ValidateNotNull]
        public ScriptBlock? Action { get; set; }

        [Parameter]
        public PSObject? MessageData { get; set; }

        [Parameter]
        public SwitchParameter SupportEvent { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ForwardSet)]
        public SwitchParameter Forward { get; set; }

        [Parameter]
        public SwitchParameter Envelope { get; set; }

        protected override void ProcessRecord()
        {
            if (Channel.IsClosed) ThrowIpcError(new IpcException(IpcErrorKind.ChannelClosed, $"The channel '{Channel.Name}' is closed.", Channel.Name));
            if (!Channel.CanReceive) ThrowIpcError(Channel.NotSupportedError(ChannelOperation.Receive));
            if (RequestHandler.Of(Channel) != null)
            {
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(Error(
                    $"The server '{Channel.Name}' answers its messages with its -ScriptBlock handler: they cannot also raise events."),
                    "ChannelHasHandler", ErrorCategory.ResourceBusy, Channel.Name));
            }
            if (Events.GetEventSubscribers(SourceIdentifier).Any())
            {
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(Error(
                    $"A subscription with the source identifier '{SourceIdentifier}' exists already (Get-EventSubscriber). Choose another -SourceIdentifier, or Unregister-Event it first."),
                    "SourceIdentifierInUse", ErrorCategory.ResourceExists, SourceIdentifier));
            }
            IpcMessageSubscription? subscription = IpcMessageSubscription.Reserve(Channel, SourceIdentifier, Envelope, MessageData, Events);
            if (subscription == null)
            {
                IpcMessageSubscription? existing = IpcMessageSubscription.Of(Channel);
                ThrowTerminatingError(ErrorMapping.ToErrorRecord(Error(
                    $"The channel '{Channel.Name}' raises events for the subscription '{existing?.SourceIdentifier}' already; a channel has at most one. " +
                    $"Unregister-Event -SourceIdentifier '{existing?.SourceIdentifier}' first."),
                    "ChannelHasSubscription", ErrorCategory.ResourceBusy, Channel.Name));
                return;
            }
            PSEventSubscriber subscriber;
            try
            {
                ScriptBlock? wrapper = Action != null ? ScriptBlock.Create(ActionWrapper) : null;
                subscriber = Events.SubscribeEvent(subscription, IpcMessageSubscription.EventName, SourceIdentifier, MessageData, wrapper, SupportEvent, Forward);
            }
            catch
            {
                subscription.Abandon();
                throw;
            }
            subscription.Start(subscriber, Action);
            WriteVerbose($"Each message of '{Channel.Name}' raises the event '{SourceIdentifier}' ({(Action != null ? "its action runs" : Forward ? "forwarded" : "Wait-Event / Get-Event take it")}).");
            if (Action != null && !SupportEvent) WriteObject(subscriber.Action);
        }

        private static InvalidOperationException Error(string message) => new InvalidOperationException(message);
    }
}
