using System;
using System.Diagnostics;
using System.Management.Automation;
using PsIpc.Transport;

namespace PsIpc
{
    /// <summary>
    /// Write-Progress for a wait that lasts: nothing for the first two seconds, then one record a second
    /// ("waiting 12 s, 40 of 100 messages"), completed when the wait ends. Runs on the pipeline thread.
    /// </summary>
    internal sealed class WaitProgress
    {
        private static readonly TimeSpan Slice = TimeSpan.FromSeconds(1);
        private const double QuietSeconds = 2;
        private readonly Cmdlet _cmdlet;
        private readonly string _channelName;
        private readonly int _activityId;
        private long _waitStarted = Stopwatch.GetTimestamp();
        private bool _shown;

        public WaitProgress(Cmdlet cmdlet, string channelName)
        {
            _cmdlet = cmdlet;
            _channelName = channelName;
            _activityId = Math.Abs(("PsIpc:" + channelName).GetHashCode() % 100000) + 1;
        }

        public static Deadline NextSlice() => Deadline.After(Slice);

        public void Reset() => _waitStarted = Stopwatch.GetTimestamp();

        /// <param name="received">Messages taken so far, or -1 when no -Count was given.</param>
        public void Report(long received, int count)
        {
            double waited = (Stopwatch.GetTimestamp() - _waitStarted) / (double)Stopwatch.Frequency;
            if (waited < QuietSeconds) return;
            string status = count > 0
                ? $"Waited {waited:N0} s; {received} of {count} messages received"
                : $"Waited {waited:N0} s for the next message";
            var record = new ProgressRecord(_activityId, $"Receiving from '{_channelName}'", status);
            if (count > 0) record.PercentComplete = (int)Math.Min(100, received * 100 / count);
            _cmdlet.WriteProgress(record);
            _shown = true;
        }

        public void Complete()
        {
            if (!_shown) return;
            _cmdlet.WriteProgress(new ProgressRecord(_activityId, $"Receiving from '{_channelName}'", "Done") { RecordType = ProgressRecordType.Completed });
            _shown = false;
        }
    }
}
