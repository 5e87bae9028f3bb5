using System;
using System.Management.Automation;
using System.Threading;
using PsIpc.Transport;

namespace PsIpc
{
    /// <summary>
    /// The base of every PsIpc cmdlet: a cancellation token that StopProcessing (Ctrl+C, PowerShell.Stop)
    /// cancels, so that every wait in the transport ends at once, and one way to report transport errors.
    /// </summary>
    public abstract class IpcCmdlet : PSCmdlet, IDisposable
    {
        private readonly CancellationTokenSource _stopping = new CancellationTokenSource();

        /// <summary>Cancelled when the user presses Ctrl+C or the pipeline is stopped.</summary>
        protected CancellationToken CancelToken => _stopping.Token;

        protected override void StopProcessing() => _stopping.Cancel();

        public void Dispose()
        {
            _stopping.Dispose();
            GC.SuppressFinalize(this);
        }

        /// <summary>A deadline from a -TimeoutSeconds value: null waits forever, 0 polls once.</summary>
        protected static Deadline DeadlineFrom(double? timeoutSeconds) =>
            Deadline.After(timeoutSeconds.HasValue ? TimeSpan.FromSeconds(timeoutSeconds.Value) : (TimeSpan?)null);

        /// <summary>A non-terminating error: the command goes on (timeouts, per-item failures).</summary>
        protected void WriteIpcError(IpcException exception) => WriteError(ErrorMapping.ToErrorRecord(exception));

        /// <summary>A terminating error: the command cannot go on.</summary>
        protected void ThrowIpcError(IpcException exception) => ThrowTerminatingError(ErrorMapping.ToErrorRecord(exception));

        /// <summary>Timeouts are non-terminating (silent under -ErrorAction SilentlyContinue); the rest terminate.</summary>
        protected void ReportIpcError(IpcException exception)
        {
            if (exception.IsTimeout) WriteIpcError(exception);
            else ThrowIpcError(exception);
        }
    }
}
