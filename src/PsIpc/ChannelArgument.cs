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

    /// <summary>Tab completion of the names of the channels open in this process.</summary>
    public sealed class ChannelNameCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var pattern = WildcardPattern.Get((wordToComplete ?? string.Empty).Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            return ChannelRegistry.Snapshot()
                .Where(c => pattern.IsMatch(c.Name))
                .Select(c => new CompletionResult(Quote(c.Name), c.Name, CompletionResultType.ParameterValue, $"{c.Kind} {c.Role} {c.State}"));
        }

        // Characters that make a name need quotes on the command line.
        private static readonly char[] NeedsQuotes = { ' ', '#', '$', '\'', '"', ';', ',', '(', ')', '{', '}' };

        internal static string Quote(string name) =>
            name.IndexOfAny(NeedsQuotes) >= 0 ? $"'{name.Replace("'", "''")}'" : name;
    }

    /// <summary>Tab completion of pipe names: the channels open here and, on Unix, the pipes served on this machine.</summary>
    public sealed class PipeNameCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var pattern = WildcardPattern.Get((wordToComplete ?? string.Empty).Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            var names = new SortedSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (IpcChannel c in ChannelRegistry.Snapshot())
            {
                if (c.Kind == ChannelKind.Pipe && c.Role != ChannelRole.Peer) names.Add(c.Name);
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
