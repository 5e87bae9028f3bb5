using System;
using System.Runtime.CompilerServices;
using System.Threading;
using PsIpc.Amqp;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Queue
{
    /// <summary>
    /// The only code that names PsIpc.Amqp types. The runtime resolves them when a method here is first
    /// compiled, that is on the first Connect-IpcQueue, through <see cref="EngineLoader"/>; NoInlining keeps
    /// them out of the cmdlet's own methods.
    /// </summary>
    internal static class QueueEngine
    {
        [MethodImpl(MethodImplOptions.NoInlining)]
        public static IpcChannel Connect(ConnectIpcQueueCommand c, Deadline deadline, CancellationToken cancellationToken)
        {
            var options = new AmqpQueueOptions
            {
                Uri = c.Uri,
                UserName = c.Credential?.UserName,
                Password = c.Credential?.GetNetworkCredential().Password,
                CertificateThumbprint = c.CertificateThumbprint,
                Queue = c.Queue,
                Exchange = c.Exchange,
                ExchangeType = (AmqpExchangeType)Enum.Parse(typeof(AmqpExchangeType), c.ExchangeType, ignoreCase: true),
                RoutingKey = c.RoutingKey,
                BindingKeys = c.BindingKey,
                Subscribe = c.Subscribe,
                MustExist = c.MustExist,
                DeadLetterQueue = c.DeadLetterQueue,
                Confirm = !c.NoConfirm,
                MaxUnconfirmed = c.MaxUnconfirmed,
                PublishTimeout = TimeSpan.FromSeconds(c.PublishTimeoutSeconds),
                Prefetch = (ushort)c.Prefetch,
                AllowCliXml = c.AllowCliXml,
                MaxMessageSize = c.MaxMessageSize,
                Name = c.Name,
            };
            return AmqpQueueChannel.Connect(options, deadline, cancellationToken);
        }
    }
}
