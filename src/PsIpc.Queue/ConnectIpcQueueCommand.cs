using System;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Queue
{
    /// <summary>
    /// Connects to a RabbitMQ broker and returns a queue channel that Send-IpcMessage, Receive-IpcMessage,
    /// Close-IpcChannel and Get-IpcChannel use like a pipe. The first call loads the engine (EngineLoader);
    /// nothing here names a RabbitMQ or PsIpc.Amqp type, so importing the module loads neither.
    /// </summary>
    [Cmdlet(VerbsCommunications.Connect, "IpcQueue", DefaultParameterSetName = QueueSet)]
    [OutputType(typeof(IpcChannel))]
    public sealed class ConnectIpcQueueCommand : PSCmdlet, IDisposable
    {
        private const string QueueSet = "Queue";
        private const string ExchangeSet = "Exchange";
        private const string BoundQueueSet = "BoundQueue";
        private readonly CancellationTokenSource _stopping = new CancellationTokenSource();

        /// <summary>amqp://host[:port]/[vhost], or amqps:// for TLS.</summary>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public string Uri { get; set; } = string.Empty;

        /// <summary>A work queue (declared durable unless -MustExist), or the queue bound to -Exchange.</summary>
        [Parameter(Mandatory = true, Position = 1, ParameterSetName = QueueSet)]
        [Parameter(Mandatory = true, Position = 1, ParameterSetName = BoundQueueSet)]
        [ValidateNotNullOrEmpty]
        public string? Queue { get; set; }

        /// <summary>Publish to this exchange (declared durable unless -MustExist) instead of straight to a queue.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ExchangeSet)]
        [Parameter(Mandatory = true, ParameterSetName = BoundQueueSet)]
        [ValidateNotNullOrEmpty]
        public string? Exchange { get; set; }

        [Parameter(ParameterSetName = ExchangeSet)]
        [Parameter(ParameterSetName = BoundQueueSet)]
        [ValidateSet("Fanout", "Topic", "Direct")]
        public string ExchangeType { get; set; } = "Fanout";

        /// <summary>The routing key of messages sent to -Exchange (a topic: deploy.web.eu).</summary>
        [Parameter(ParameterSetName = ExchangeSet)]
        [Parameter(ParameterSetName = BoundQueueSet)]
        [AllowEmptyString]
        public string? RoutingKey { get; set; }

        /// <summary>The keys the receiving queue is bound to -Exchange with (topics: deploy.*, deploy.#).</summary>
        [Parameter(ParameterSetName = ExchangeSet)]
        [Parameter(ParameterSetName = BoundQueueSet)]
        [AllowEmptyString]
        public string[]? BindingKey { get; set; }

        /// <summary>Receive from -Exchange through a private queue that lives as long as the connection.</summary>
        [Parameter(ParameterSetName = ExchangeSet)]
        public SwitchParameter Subscribe { get; set; }

        /// <summary>Attach to an existing queue or exchange only: QueueNotFound / ExchangeNotFound otherwise.</summary>
        [Parameter]
        public SwitchParameter MustExist { get; set; }

        /// <summary>Messages Receive-IpcMessage cannot decode are moved to this queue (declared with -Queue).</summary>
        [Parameter(ParameterSetName = QueueSet)]
        [Parameter(ParameterSetName = BoundQueueSet)]
        [ValidateNotNullOrEmpty]
        public string? DeadLetterQueue { get; set; }

        [Parameter]
        [Credential]
        public PSCredential? Credential { get; set; }

        /// <summary>amqps: trust exactly the broker certificate with this SHA-1 thumbprint (a self-signed one).</summary>
        [Parameter]
        [ValidatePattern("^(?:[0-9A-Fa-f]{2}[: ]?){19}[0-9A-Fa-f]{2}$")]
        public string? CertificateThumbprint { get; set; }

        /// <summary>Do not wait for the broker's confirms: faster, and messages in flight when a connection drops are lost.</summary>
        [Parameter]
        public SwitchParameter NoConfirm { get; set; }

        /// <summary>Messages sent and not yet confirmed before Send-IpcMessage waits.</summary>
        [Parameter]
        [ValidateRange(1, 65535)]
        public int MaxUnconfirmed { get; set; } = 256;

        /// <summary>How long a message may wait for its confirm, reconnects included, before PublishNotConfirmed.</summary>
        [Parameter]
        [ValidateRange(0.001, 86400)]
        public double PublishTimeoutSeconds { get; set; } = 30;

        /// <summary>The most unacknowledged messages this consumer holds (1 for long jobs shared by workers).</summary>
        [Parameter]
        [ValidateRange(1, 65535)]
        public int Prefetch { get; set; } = 256;

        /// <summary>Send objects as CliXml and decode CliXml received: only when PowerShell alone reads and writes the queue.</summary>
        [Parameter]
        public SwitchParameter AllowCliXml { get; set; }

        /// <summary>Largest message sent or received; at most 128 MiB (the broker's limit), 64 MiB by default (the client's).</summary>
        [Parameter]
        [ValidateRange(1, 128 * 1024 * 1024)]
        public int MaxMessageSize { get; set; } = 64 * 1024 * 1024;

        /// <summary>The channel's name in Get-IpcChannel and for -Channel by name (default: the queue or exchange).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Name { get; set; }

        /// <summary>How long to wait for the broker; omitted waits (retrying) until it answers; 0 tries once.</summary>
        [Parameter]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        protected override void EndProcessing()
        {
            Deadline deadline = MyInvocation.BoundParameters.ContainsKey(nameof(TimeoutSeconds))
                ? Deadline.After(TimeSpan.FromSeconds(TimeoutSeconds))
                : Deadline.Infinite;
            if (MyInvocation.BoundParameters.ContainsKey(nameof(Credential)) && Credential == PSCredential.Empty) Credential = null;
            try
            {
                EngineLoader.Hook();
                string target = Name ?? Queue ?? Exchange ?? Uri;
                WriteVerbose($"Connecting to the broker for '{target}'{(deadline.IsInfinite ? " (retrying until it answers)" : $" (up to {TimeoutSeconds} s)")}.");
                // On a worker, so that a broker that takes long to answer (retries) shows progress.
                IpcChannel channel;
                using (IpcChannel.BeginConnectWait())
                {
                    channel = new WaitProgress(this, target, $"Connecting to the broker for '{target}'")
                        .Run(() => QueueEngine.Connect(this, deadline, _stopping.Token), deadline, TimeoutSeconds, _stopping.Token);
                }
                WriteVerbose($"Connected to {ChannelActivity.Describe(channel)}.");
                ChannelRegistry.Register(channel, Runspace.DefaultRunspace?.InstanceId);
                QueueRunspaceLifetime.Bind(channel, Runspace.DefaultRunspace);
                WriteObject(channel);
            }
            catch (IpcException e)
            {
                // As every PsIpc cmdlet: a timeout is non-terminating (silent under SilentlyContinue), the rest terminate.
                if (e.IsTimeout) WriteError(ErrorMapping.ToErrorRecord(e));
                else ThrowTerminatingError(ErrorMapping.ToErrorRecord(e));
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: PowerShell reports the stop itself.
            }
        }

        protected override void StopProcessing() => _stopping.Cancel();

        public void Dispose() => _stopping.Dispose();
    }
}
