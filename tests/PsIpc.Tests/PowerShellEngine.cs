using System;
using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Runtime.ExceptionServices;

namespace PsIpc.Tests
{
    /// <summary>
    /// PowerShell in this process: one runspace, and a way to run test code on its pipeline thread, where a
    /// cmdlet's code runs (the codec's JSON path runs a nested pipeline in the current runspace, and
    /// PSSerializer consults that runspace's type table).
    /// </summary>
    public sealed class PowerShellEngine : IDisposable
    {
        private readonly Runspace _runspace;

        public PowerShellEngine()
        {
            _runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault());
            _runspace.Open();
        }

        /// <summary>Runs <paramref name="body"/> on the pipeline thread; its exception, if any, is rethrown here as it was.</summary>
        public T Run<T>(Func<T> body)
        {
            T result = default!; // set by body, or failure is set and thrown
            ExceptionDispatchInfo? failure = null;
            Action call = () =>
            {
                try
                {
                    result = body();
                }
                catch (Exception e)
                {
                    failure = ExceptionDispatchInfo.Capture(e);
                }
            };
            using (PowerShell ps = PowerShell.Create())
            {
                ps.Runspace = _runspace;
                ps.AddScript("param($call) $call.Invoke()").AddArgument(call);
                ps.Invoke();
                if (ps.HadErrors && failure == null && ps.Streams.Error.Count > 0)
                {
                    throw new InvalidOperationException("The test body failed in PowerShell: " + ps.Streams.Error[0]);
                }
            }
            failure?.Throw();
            return result;
        }

        public void Run(Action body) => Run(() =>
        {
            body();
            return true;
        });

        /// <summary>The one object a script outputs, as PowerShell made it (pipeline wrappers included).</summary>
        public PSObject Evaluate(string script)
        {
            Collection<PSObject> output = Invoke(script);
            if (output.Count != 1) throw new InvalidOperationException($"'{script}' output {output.Count} objects, not one.");
            return output[0];
        }

        /// <summary>Runs a script; inside <see cref="Run{T}"/> as a nested pipeline, as a cmdlet's own PowerShell would.</summary>
        public Collection<PSObject> Invoke(string script)
        {
            bool nested = ReferenceEquals(Runspace.DefaultRunspace, _runspace);
            using (PowerShell ps = nested ? PowerShell.Create(RunspaceMode.CurrentRunspace) : PowerShell.Create())
            {
                if (!nested) ps.Runspace = _runspace;
                ps.AddScript(script);
                Collection<PSObject> output = ps.Invoke();
                if (ps.HadErrors && ps.Streams.Error.Count > 0) throw new InvalidOperationException($"'{script}' failed: {ps.Streams.Error[0]}");
                return output;
            }
        }

        public void Dispose() => _runspace.Dispose();
    }
}
