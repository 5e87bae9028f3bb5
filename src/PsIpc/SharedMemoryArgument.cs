using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using PsIpc.Transport.Channels;
using PsIpc.Transport.SharedMemory;

namespace PsIpc
{
    /// <summary>Lets -SharedMemory take the name of a segment or queue open in this process as well as the object.</summary>
    public sealed class SharedMemoryTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            object value = inputData is PSObject pso ? pso.BaseObject : inputData;
            if (!(value is string name)) return inputData;
            IpcChannel? channel;
            try
            {
                channel = ChannelRegistry.Find(name);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentTransformationMetadataException(e.Message, e);
            }
            if (channel is SharedMemoryChannel shm) return shm;
            throw new ArgumentTransformationMetadataException(
                $"No shared memory segment named '{name}' is open in this process. Open it with: New-SharedMemory -Name '{name}' -Open");
        }
    }

    /// <summary>
    /// Tab completion of the names of this user's segments and queues, as the parameter takes them: -SharedMemory
    /// (Read-, Write-SharedMemory) only the segments open in this process under a name that resolves; New-SharedMemory
    /// -Name the existing names only with -Open or -Force (a new segment needs a new name); -Name elsewhere every
    /// segment and queue of this user.
    /// </summary>
    public sealed class SharedMemoryNameCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var pattern = WildcardPattern.Get((wordToComplete ?? string.Empty).Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            var names = new SortedSet<string>(StringComparer.Ordinal);
            if (string.Equals(parameterName, "SharedMemory", StringComparison.OrdinalIgnoreCase))
            {
                foreach (IpcChannel c in ChannelRegistry.Snapshot())
                {
                    if (c is SharedMemorySegment && pattern.IsMatch(c.Name) && Resolves(c)) names.Add(c.Name);
                }
                return names.Select(n => new CompletionResult(ChannelNameCompleter.Quote(n), n, CompletionResultType.ParameterValue, n));
            }
            bool creating = string.Equals(commandName, "New-SharedMemory", StringComparison.OrdinalIgnoreCase)
                && (fakeBoundParameters == null || !(fakeBoundParameters.Contains("Open") || fakeBoundParameters.Contains("Force")));
            if (creating) return Enumerable.Empty<CompletionResult>();
            foreach (IpcChannel c in ChannelRegistry.Snapshot())
            {
                if (c is SharedMemoryChannel) names.Add(c.Name);
            }
            try
            {
                foreach (SharedMemoryInfo info in SharedMemoryInfo.List()) names.Add(info.Name);
            }
            catch (Exception e) when (e is System.IO.IOException || e is UnauthorizedAccessException || e is Transport.IpcException)
            {
                // Completion offers what it can.
            }
            return names.Where(n => pattern.IsMatch(n))
                .Select(n => new CompletionResult(ChannelNameCompleter.Quote(n), n, CompletionResultType.ParameterValue, n));
        }

        private static bool Resolves(IpcChannel channel)
        {
            try
            {
                return ReferenceEquals(ChannelRegistry.Find(channel.Name), channel);
            }
            catch (ArgumentException)
            {
                return false;
            }
        }
    }
}
