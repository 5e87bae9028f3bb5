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

        /// <summary>True when the user gave -TimeoutSeconds (omitted waits forever).</summary>
        protected bool HasTimeout => MyInvocation.BoundParameters.ContainsKey("TimeoutSeconds");

        /// <summary>
        /// The deadline for a -TimeoutSeconds value: none given waits forever, 0 polls once.
        /// (The parameter is a plain double, not double?: binding to Nullable costs tens of microseconds per call.)
        /// </summary>
        protected Deadline DeadlineFrom(double timeoutSeconds) =>
            HasTimeout ? Deadline.After(TimeSpan.FromSeconds(timeoutSeconds)) : Deadline.Infinite;

        /// <summary>
        /// Closes a channel, which waits for queued messages to be written (up to the deadline). Ctrl+C returns
        /// at once; the close goes on in the background and still ends by the deadline.
        /// </summary>
        protected void CloseCancellably(Transport.Channels.IpcChannel channel, Deadline deadline)
        {
            bool wasOpen = !channel.IsClosed;
            System.Threading.Tasks.Task closing = System.Threading.Tasks.Task.Run(() => channel.Close(deadline));
            var progress = new WaitProgress(this, channel.Name, $"Closing '{channel.Name}' (writing what it queued)");
            double seconds = deadline.IsInfinite ? 0 : deadline.RemainingMilliseconds / 1000.0;
            try
            {
                // A close that waits for a slow peer to take its messages shows progress, a second at a time.
                using (channel.BeginWait())
                {
                    while (!closing.Wait(1000, CancelToken))
                    {
                        progress.ReportWaiting(deadline, seconds);
                    }
                }
                progress.Complete();
                if (wasOpen) WriteVerbose($"Closed {ChannelActivity.Describe(channel)}: {ChannelActivity.Counters(channel)}.");
            }
            catch (OperationCanceledException)
            {
            }
            catch (AggregateException e) when (e.InnerException is IpcException ipc)
            {
                WriteIpcError(ipc);
            }
        }

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
