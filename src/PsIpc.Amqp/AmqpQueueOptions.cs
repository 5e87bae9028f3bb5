using System;

namespace PsIpc.Amqp
{
    /// <summary>The kinds of exchange Connect-IpcQueue declares (AMQP's names, lower case on the wire).</summary>
    public enum AmqpExchangeType { Fanout, Topic, Direct }

    /// <summary>
    /// Everything Connect-IpcQueue passes to the engine. Only plain types: the cmdlet assembly compiles
    /// against this class and never sees RabbitMQ.Client.
    /// </summary>
    public sealed class AmqpQueueOptions
    {
        /// <summary>The largest message RabbitMQ.Client 7 reads by default (it closes the connection on a bigger one).</summary>
        public const int ClientMaxMessageSize = 64 * 1024 * 1024;

        /// <summary>RabbitMQ 3.x refuses bodies over max_message_size, 128 MiB by default (and at most 512 MiB).</summary>
        public const int BrokerMaxMessageSize = 128 * 1024 * 1024;

        /// <summary>amqp://host[:port]/[vhost] or amqps://...; user info in it is used when no credential is given.</summary>
        public string Uri { get; set; } = "amqp://localhost/";

        public string? UserName { get; set; }

        public string? Password { get; set; }

        /// <summary>Trust exactly this server certificate (SHA-1 thumbprint), for a self-signed broker.</summary>
        public string? CertificateThumbprint { get; set; }

        /// <summary>The queue to send to and receive from (a work queue), or the queue bound to <see cref="Exchange"/>.</summary>
        public string? Queue { get; set; }

        /// <summary>Send to this exchange (publish/subscribe) instead of straight to <see cref="Queue"/>.</summary>
        public string? Exchange { get; set; }

        public AmqpExchangeType ExchangeType { get; set; } = AmqpExchangeType.Fanout;

        /// <summary>The routing key of sends to an exchange (topics: "deploy.web"). Sends to a queue use its name.</summary>
        public string? RoutingKey { get; set; }

        /// <summary>The keys <see cref="Queue"/> (or the subscription queue) is bound to <see cref="Exchange"/> with.</summary>
        public string[]? BindingKeys { get; set; }

        /// <summary>With <see cref="Exchange"/> and no <see cref="Queue"/>: receive too, through a private queue bound at connect.</summary>
        public bool Subscribe { get; set; }

        /// <summary>Attach to what exists (passive declare): QueueNotFound / ExchangeNotFound instead of creating it.</summary>
        public bool MustExist { get; set; }

        /// <summary>Undecodable messages are rejected to this queue (declared, and set as the queue's dead-letter route).</summary>
        public string? DeadLetterQueue { get; set; }

        /// <summary>Wait for the broker's confirm of every message (persistent messages, at-least-once). Off: faster, no guarantee.</summary>
        public bool Confirm { get; set; } = true;

        /// <summary>The most messages sent and not yet confirmed; Send waits for confirms beyond it.</summary>
        public int MaxUnconfirmed { get; set; } = 256;

        /// <summary>How long one message may wait for its confirm (including a reconnect) before PublishNotConfirmed.</summary>
        public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>
        /// The most unacknowledged messages the broker hands this consumer at once. 256: a stream of small messages
        /// then never waits for the broker (32 consumed at about half the rate, at more CPU per message, in the queue
        /// bench rows); workers sharing long jobs pass 1.
        /// </summary>
        public ushort Prefetch { get; set; } = 256;

        /// <summary>Send objects as CliXml and decode CliXml received (anyone allowed to publish to the queue could send it: off by default).</summary>
        public bool AllowCliXml { get; set; }

        /// <summary>Refused before sending when larger; also the largest message received.</summary>
        public int MaxMessageSize { get; set; } = ClientMaxMessageSize;

        /// <summary>The channel's name in Get-IpcChannel (default: the queue or exchange name).</summary>
        public string? Name { get; set; }

        /// <summary>The pause between reconnect attempts after the broker went away.</summary>
        public TimeSpan RecoveryInterval { get; set; } = TimeSpan.FromSeconds(1);

        /// <summary>
        /// The heartbeat asked of the broker (it takes the lower of its own and this). 10 s, not the client's 60 s: the
        /// client gives a connection up after three heartbeat intervals without a frame, so one that went dead without a
        /// close (a broker that stopped reading, a link that drops packets) was noticed, and recovered, only after three
        /// minutes (rabbitmq-dotnet-client#1930's delay); now within about 30 s. RabbitMQ advises 5 to 20 s.
        /// </summary>
        public TimeSpan Heartbeat { get; set; } = TimeSpan.FromSeconds(10);

        internal AmqpQueueOptions Clone() => (AmqpQueueOptions)MemberwiseClone();
    }
}
