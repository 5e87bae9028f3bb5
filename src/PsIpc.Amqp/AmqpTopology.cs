using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace PsIpc.Amqp
{
    /// <summary>
    /// What a queue channel sends to and receives from, declared (or, with -MustExist, checked) at connect:
    ///   -Queue q                  a work queue: sends go to q through the default exchange, receives take from q
    ///   -Exchange x               publish to x (fanout by default) with -RoutingKey; sends only
    ///   -Exchange x -Subscribe    and receive through a private queue bound to x (gone with the connection)
    ///   -Exchange x -Queue q      and receive from q, a durable queue bound to x (shared by its consumers)
    /// Queues and exchanges are durable. A dead-letter queue gets undecodable messages (Reject).
    /// </summary>
    internal sealed class AmqpTopology
    {
        public string Exchange { get; private set; } = string.Empty;

        public string RoutingKey { get; private set; } = string.Empty;

        /// <summary>Sends straight to a queue are mandatory: a missing queue is reported, not silently dropped.</summary>
        public bool Mandatory { get; private set; }

        /// <summary>The queue Receive consumes; null for a publish-only channel.</summary>
        public string? ConsumeQueue { get; private set; }

        public bool HasDeadLetterQueue { get; private set; }

        /// <summary>
        /// True when what this channel publishes lands in the queue it consumes, as far as its own declarations tell: a
        /// work queue (-Queue q: sent to q, taken from q), or a queue bound to the exchange with a key that matches the
        /// routing key of its sends (fanout: every key). A request on such a channel would read itself back.
        /// </summary>
        public bool ReceivesOwnSends { get; private set; }

        public string Describe(string endpoint)
        {
            string what = Exchange.Length == 0
                ? $"queue {ConsumeQueue}"
                : ConsumeQueue == null || ConsumeQueue.StartsWith("amq.gen-", StringComparison.Ordinal)
                    ? $"exchange {Exchange}{(ConsumeQueue == null ? "" : " (subscribed)")}"
                    : $"exchange {Exchange} -> queue {ConsumeQueue}";
            return $"{endpoint} {what}";
        }

        public static AmqpTopology Declare(IChannel channel, AmqpQueueOptions o, string target, Deadline deadline, CancellationToken cancellationToken)
        {
            var topology = new AmqpTopology { HasDeadLetterQueue = o.DeadLetterQueue != null };
            string exchangeType = o.ExchangeType.ToString().ToLowerInvariant();
            try
            {
                if (o.Exchange != null)
                {
                    if (o.MustExist) Waits.Run(t => channel.ExchangeDeclarePassiveAsync(o.Exchange, t), deadline, cancellationToken);
                    else Waits.Run(t => channel.ExchangeDeclareAsync(o.Exchange, exchangeType, durable: true, autoDelete: false, cancellationToken: t), deadline, cancellationToken);
                    topology.Exchange = o.Exchange;
                    topology.RoutingKey = o.RoutingKey ?? string.Empty;
                }
                if (o.Queue != null)
                {
                    if (o.MustExist)
                    {
                        Waits.Run(t => channel.QueueDeclarePassiveAsync(o.Queue, t), deadline, cancellationToken);
                    }
                    else
                    {
                        Dictionary<string, object?>? arguments = null;
                        if (o.DeadLetterQueue != null)
                        {
                            Waits.Run(t => channel.QueueDeclareAsync(o.DeadLetterQueue, durable: true, exclusive: false, autoDelete: false, cancellationToken: t),
                                deadline, cancellationToken);
                            // Rejected messages go through the default exchange straight to the dead-letter queue.
                            arguments = new Dictionary<string, object?>
                            {
                                ["x-dead-letter-exchange"] = string.Empty,
                                ["x-dead-letter-routing-key"] = o.DeadLetterQueue,
                            };
                        }
                        Waits.Run(t => channel.QueueDeclareAsync(o.Queue, durable: true, exclusive: false, autoDelete: false, arguments: arguments, cancellationToken: t),
                            deadline, cancellationToken);
                    }
                    topology.ConsumeQueue = o.Queue;
                    if (o.Exchange == null)
                    {
                        topology.RoutingKey = o.Queue;
                        topology.Mandatory = true;
                    }
                }
                else if (o.Exchange != null && o.Subscribe)
                {
                    QueueDeclareOk ok = Waits.Run(t => channel.QueueDeclareAsync(string.Empty, durable: false, exclusive: true, autoDelete: true, cancellationToken: t),
                        deadline, cancellationToken);
                    topology.ConsumeQueue = ok.QueueName;
                }
                if (o.Exchange != null && topology.ConsumeQueue != null)
                {
                    foreach (string key in BindingKeys(o))
                    {
                        Waits.Run(t => channel.QueueBindAsync(topology.ConsumeQueue, o.Exchange, key, cancellationToken: t), deadline, cancellationToken);
                    }
                }
                topology.ReceivesOwnSends = topology.ConsumeQueue != null &&
                    (o.Exchange == null || BindingRoutes(o.ExchangeType, BindingKeys(o), topology.RoutingKey));
                return topology;
            }
            catch (OperationInterruptedException e) when (e.ShutdownReason != null)
            {
                bool aboutExchange = e.ShutdownReason.ReplyText.IndexOf("exchange", StringComparison.OrdinalIgnoreCase) >= 0;
                string what = aboutExchange ? $"The exchange '{o.Exchange}'" : $"The queue '{o.Queue}'";
                throw AmqpErrors.FromShutdown(e.ShutdownReason, what, target, aboutExchange);
            }
            catch (Waits.DeadlineExpired)
            {
                throw new IpcException(IpcErrorKind.ConnectTimeout, $"The broker did not answer the declarations of '{target}' in time.", target);
            }
        }

        /// <summary>Whether an exchange of <paramref name="type"/> routes a message with <paramref name="routingKey"/> through one of the binding keys.</summary>
        internal static bool BindingRoutes(AmqpExchangeType type, IEnumerable<string> bindingKeys, string routingKey)
        {
            foreach (string key in bindingKeys)
            {
                switch (type)
                {
                    case AmqpExchangeType.Fanout: return true;
                    case AmqpExchangeType.Direct: if (string.Equals(key, routingKey, StringComparison.Ordinal)) return true; break;
                    case AmqpExchangeType.Topic: if (TopicMatches(key.Split('.'), 0, routingKey.Split('.'), 0)) return true; break;
                }
            }
            return false;
        }

        /// <summary>AMQP topic matching, word by word: "*" is exactly one word, "#" zero or more.</summary>
        private static bool TopicMatches(string[] pattern, int p, string[] words, int w)
        {
            if (p == pattern.Length) return w == words.Length;
            if (pattern[p] == "#")
            {
                for (int skip = w; skip <= words.Length; skip++)
                {
                    if (TopicMatches(pattern, p + 1, words, skip)) return true;
                }
                return false;
            }
            if (w == words.Length) return false;
            return (pattern[p] == "*" || string.Equals(pattern[p], words[w], StringComparison.Ordinal)) && TopicMatches(pattern, p + 1, words, w + 1);
        }

        /// <summary>Fanout ignores keys; a topic subscription takes everything unless told; direct defaults to the routing key.</summary>
        private static string[] BindingKeys(AmqpQueueOptions o)
        {
            if (o.BindingKeys != null && o.BindingKeys.Length > 0) return o.BindingKeys;
            switch (o.ExchangeType)
            {
                case AmqpExchangeType.Topic: return new[] { "#" };
                case AmqpExchangeType.Direct: return new[] { o.RoutingKey ?? o.Queue ?? string.Empty };
                default: return new[] { string.Empty };
            }
        }
    }
}
