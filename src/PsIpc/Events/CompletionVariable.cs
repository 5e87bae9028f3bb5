using System;
using System.Management.Automation;

namespace PsIpc.Events
{
    /// <summary>A variable whose assignment calls back: the -Action wrapper's way to say it ran, in any language mode.</summary>
    internal sealed class CompletionVariable : PSVariable
    {
        private readonly Action<object?> _assigned;

        public CompletionVariable(string name, Action<object?> assigned)
            : base(name)
        {
            _assigned = assigned;
        }

        public override object? Value
        {
            get => null;
            set => _assigned?.Invoke(value); // null while the base constructor runs
        }
    }
}
