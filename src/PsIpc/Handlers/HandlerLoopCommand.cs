using System.Management.Automation;

namespace PsIpc.Handlers
{
    /// <summary>
    /// The loop of a handler's worker runspace (not exported: only the worker runspaces have it). A compiled
    /// command, so the loop costs no interpreted statements, calls the worker's methods whatever the runspace's
    /// language mode (a script loop calling .NET methods never ran in ConstrainedLanguage, so such a handler never
    /// answered), and runs inside a pipeline, whose error stream collects what the handler writes with Write-Error.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Invoke, "PsIpcHandlerLoop")]
    [OutputType(typeof(void))]
    public sealed class HandlerLoopCommand : PSCmdlet
    {
        [Parameter(Mandatory = true)]
        [ValidateNotNull]
        public HandlerWorker Worker { get; set; } = null!;

        protected override void EndProcessing() => Worker.Run(this);
    }
}
