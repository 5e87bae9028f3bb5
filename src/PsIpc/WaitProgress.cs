using System;
using System.Diagnostics;
using System.Management.Automation;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport;

namespace PsIpc
{
    /// <summary>
    /// Write-Progress for a wait that lasts: nothing for the first second, then one record a second
    /// ("waited 12 s, 40 of 100 messages"), completed when the wait ends. Runs on the pipeline thread.
    /// Every wait of the module that can last uses it: receive, connect, flush, close, and (through
    /// <see cref="Observe"/>) a send waiting for room and a wait for a shared memory segment's lock.
    /// </summary>
    internal sealed class WaitProgress
    {
        private static readonly TimeSpan Slice = TimeSpan.FromSeconds(1);
        private const double QuietSeconds = 1;
        private readonly Cmdlet _cmdlet;
        private readonly string _activity;
        private readonly int _activityId;
        private long _waitStarted = Stopwatch.GetTimestamp();
        private long _lastWrite;
        private bool _shown;
        private Action? _observer;
        private Deadline _observedDeadline = Deadline.Infinite;
        private double _observedTimeout;

        public WaitProgress(Cmdlet cmdlet, string channelName)
            : this(cmdlet, channelName, $"Receiving from '{channelName}'")
        {
        }

        /// <param name="activity">What the progress bar says is going on ("Connecting to pipe 'jobs'").</param>
        public WaitProgress(Cmdlet cmdlet, string channelName, string activity)
        {
            _cmdlet = cmdlet;
            _activity = activity;
            _activityId = Math.Abs(("PsIpc:" + channelName).GetHashCode() % 100000) + 1;
        }

        public static Deadline NextSlice() => Deadline.After(Slice);

        public void Reset() => _waitStarted = Stopwatch.GetTimestamp();

        /// <param name="received">Messages taken so far, or -1 when no -Count was given.</param>
        public void Report(long received, int count)
        {
            double waited = Waited;
            if (waited < QuietSeconds) return;
            string status = count > 0
                ? $"Waited {waited:N0} s; {received} of {count} messages received"
                : $"Waited {waited:N0} s for the next message";
            var record = new ProgressRecord(_activityId, _activity, status);
            if (count > 0) record.PercentComplete = (int)Math.Min(100, received * 100 / count);
            Write(record);
        }

        /// <summary>A wait without a count: "Waited 3 s" (and until when, with a timeout).</summary>
        public void ReportWaiting(Deadline deadline, double timeoutSeconds)
        {
            double waited = Waited;
            if (waited < QuietSeconds) return;
            var record = new ProgressRecord(_activityId, _activity, $"Waited {waited:N0} s");
            if (!deadline.IsInfinite && timeoutSeconds > 0)
            {
                record.PercentComplete = (int)Math.Min(100, waited * 100 / timeoutSeconds);
                record.SecondsRemaining = (int)Math.Max(0, Math.Ceiling(timeoutSeconds - waited));
            }
            Write(record);
        }

        public void Complete()
        {
            if (!_shown) return;
            _cmdlet.WriteProgress(new ProgressRecord(_activityId, _activity, "Done") { RecordType = ProgressRecordType.Completed });
            _shown = false;
        }

        /// <summary>
        /// Runs a blocking call (a connect) on a worker thread while the pipeline thread shows progress, a second at a
        /// time: a blocking call cannot report progress itself. Its exception is rethrown as it was. On Ctrl+C this
        /// returns at once (OperationCanceledException); the call, given the same token, ends by itself, and a result it
        /// still produced is disposed.
        /// </summary>
        public T Run<T>(Func<T> call, Deadline deadline, double timeoutSeconds, CancellationToken cancellationToken)
        {
            Task<T> task = Task.Run(call, CancellationToken.None);
            try
            {
                while (!task.Wait((int)Slice.TotalMilliseconds, cancellationToken))
                {
                    ReportWaiting(deadline, timeoutSeconds);
                }
            }
            catch (OperationCanceledException)
            {
                task.ContinueWith(t => (t.Result as IDisposable)?.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
                throw;
            }
            catch (AggregateException e) when (e.InnerException != null)
            {
                ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw; // not reached
            }
            finally
            {
                if (!_cmdlet.Stopping) Complete();
            }
            return task.Result;
        }

        /// <summary>
        /// Shows progress while a transport call on this thread waits (for room in a full queue, for a segment's lock,
        /// for a broker's confirms): the transport tells its observer between the slices of such a wait
        /// (<see cref="WaitObserver"/>), on the waiting thread, which is the pipeline thread, so WriteProgress is
        /// allowed there. The wait keeps its own deadline. Dispose the scope when the call returns, then call
        /// <see cref="Complete"/> (which costs nothing when nothing was shown).
        /// </summary>
        public WaitObserver.Scope Observe(Deadline deadline, double timeoutSeconds)
        {
            Reset();
            _observedDeadline = deadline;
            _observedTimeout = timeoutSeconds;
            return WaitObserver.Observe(_observer ?? (_observer = OnWaiting));
        }

        // Called by the transport, on the pipeline thread, with no transport lock held; must not throw.
        private void OnWaiting()
        {
            if (_cmdlet.Stopping) return;
            if (_shown && Stopwatch.GetTimestamp() - _lastWrite < Stopwatch.Frequency) return; // a record a second
            try
            {
                ReportWaiting(_observedDeadline, _observedTimeout);
            }
            catch (PipelineStoppedException)
            {
                // Stopping: the wait ends at once through its cancellation token.
            }
        }

        private double Waited => (Stopwatch.GetTimestamp() - _waitStarted) / (double)Stopwatch.Frequency;

        private void Write(ProgressRecord record)
        {
            _cmdlet.WriteProgress(record);
            _shown = true;
            _lastWrite = Stopwatch.GetTimestamp();
        }
    }
}
