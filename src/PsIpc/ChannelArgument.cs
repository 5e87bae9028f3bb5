using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using PsIpc.Transport.Channels;

namespace PsIpc
{
    /// <summary>Lets -Channel take the name of an open channel as well as the channel object.</summary>
    public sealed class ChannelTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            object value = inputData is PSObject pso ? pso.BaseObject : inputData;
            if (value is string name) return Resolve(name);
            if (value is IList list && !(value is IpcChannel))
            {
                var resolved = new List<object>();
                foreach (object item in list)
                {
                    object inner = item is PSObject p ? p.BaseObject : item;
                    resolved.Add(inner is string s ? Resolve(s) : inner);
                }
                return resolved.ToArray();
            }
            return inputData;
        }

        private static IpcChannel Resolve(string name)
        {
            IpcChannel? channel;
            try
            {
                channel = ChannelRegistry.Find(name, System.Management.Automation.Runspaces.Runspace.DefaultRunspace?.InstanceId);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentTransformationMetadataException(e.Message, e);
            }
            return channel ?? throw new ArgumentTransformationMetadataException(
                $"No open channel is named '{name}'. Get-IpcChannel lists the open channels.");
        }
    }

    /// <summary>
    /// Tab completion of the names of the channels open in this process that -Channel takes: a name it would
    /// refuse as ambiguous (several channels of that name, none of them the caller's own) is not offered; pass
    /// the object. Subclasses offer only the channels their parameter accepts.
    /// </summary>
    public class ChannelNameCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var pattern = WildcardPattern.Get((wordToComplete ?? string.Empty).Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            Guid? runspace = System.Management.Automation.Runspaces.Runspace.DefaultRunspace?.InstanceId;
            var offered = new HashSet<string>(StringComparer.Ordinal);
            foreach (IpcChannel c in ChannelRegistry.Snapshot())
            {
                if (!pattern.IsMatch(c.Name) || !Offers(c) || !offered.Add(c.Name)) continue;
                if (NamesMustResolve && !ResolvesTo(c, runspace)) continue;
                yield return new CompletionResult(Quote(c.Name), c.Name, CompletionResultType.ParameterValue, $"{c.Kind} {c.Role} {c.State}");
            }
        }

        /// <summary>Whether the parameter takes this channel.</summary>
        protected virtual bool Offers(IpcChannel channel) => true;

        /// <summary>True for a parameter that resolves one name to one channel (-Channel); false for a filter (Get-IpcChannel -Name).</summary>
        protected virtual bool NamesMustResolve => true;

        // What ChannelTransformation would do with the name: the completion must not fail when it is used.
        private static bool ResolvesTo(IpcChannel channel, Guid? runspace)
        {
            try
            {
                return ReferenceEquals(ChannelRegistry.Find(channel.Name, runspace), channel);
            }
            catch (ArgumentException)
            {
                return false; // ambiguous
            }
        }

        // Characters that make a name need quotes on the command line.
        private static readonly char[] NeedsQuotes = { ' ', '#', '$', '\'', '"', ';', ',', '(', ')', '{', '}' };

        internal static string Quote(string name) =>
            name.IndexOfAny(NeedsQuotes) >= 0 ? $"'{name.Replace("'", "''")}'" : name;
    }

    /// <summary>Get-IpcChannel -Name: every open channel's name (a name several channels share lists them all).</summary>
    public sealed class ChannelListCompleter : ChannelNameCompleter
    {
        protected override bool NamesMustResolve => false;
    }

    /// <summary>Receive-IpcMessage -Channel: channels that can receive (not a shared memory segment, which is read).</summary>
    public sealed class ReceivingChannelCompleter : ChannelNameCompleter
    {
        protected override bool Offers(IpcChannel channel) => channel.CanReceive;
    }

    /// <summary>Send-IpcMessage -Channel: channels that can send.</summary>
    public sealed class SendingChannelCompleter : ChannelNameCompleter
    {
        protected override bool Offers(IpcChannel channel) => channel.CanSend;
    }

    /// <summary>
    /// Invoke-IpcRequest -Channel: what IpcChannel.TryRequest takes, a channel that sends, receives and can make requests
    /// (not a server, which answers requests, nor a shared memory queue, which would read its own request back).
    /// </summary>
    public sealed class RequestingChannelCompleter : ChannelNameCompleter
    {
        protected override bool Offers(IpcChannel channel) => channel.CanSend && channel.CanReceive && channel.CanRequest;
    }

    /// <summary>Get- and Stop-IpcSocketServer: the socket servers, not the other channels.</summary>
    public sealed class SocketServerNameCompleter : ChannelNameCompleter
    {
        protected override bool Offers(IpcChannel channel) => channel is Transport.Sockets.ISocketServer;
    }

    /// <summary>
    /// Tab completion of pipe names for New-IpcPipe -Connect: the pipe servers open here and, on Unix, the pipes served on
    /// this machine. A new server needs a name nobody serves, so without -Connect nothing is offered.
    /// </summary>
    public sealed class PipeNameCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            if (fakeBoundParameters == null || !fakeBoundParameters.Contains("Connect")) return Enumerable.Empty<CompletionResult>();
            var pattern = WildcardPattern.Get((wordToComplete ?? string.Empty).Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            var names = new SortedSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (IpcChannel c in ChannelRegistry.Snapshot())
            {
                if (c.Kind == ChannelKind.Pipe && c.Role == ChannelRole.Server) names.Add(c.Name);
            }
            foreach (string served in Transport.Pipes.PipeName.ListServed())
            {
                // PowerShell's own host pipes (Enter-PSHostProcess) live beside ours: not PsIpc pipes.
                if (!served.StartsWith("PSHost.", StringComparison.Ordinal)) names.Add(served);
            }
            return names.Where(n => pattern.IsMatch(n))
                .Select(n => new CompletionResult(ChannelNameCompleter.Quote(n), n, CompletionResultType.ParameterValue, n));
        }
    }
}
