using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading;

namespace PsIpc.FaultPeer
{
    /// <summary>A peer process of the driver: its lines as they come, and kill -9.</summary>
    internal sealed class Victim : IDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new ConcurrentQueue<string>();
        private readonly ConcurrentQueue<string> _errors = new ConcurrentQueue<string>();

        public Victim(string transport, string role, string address, int seed)
        {
            var psi = new ProcessStartInfo(Environment.ProcessPath!)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            // Run as `dotnet PsIpc.FaultPeer.dll`: the host needs the assembly again.
            if (System.IO.Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(Victim).Assembly.Location);
            foreach (string a in new[] { "peer", transport, role, address, seed.ToString(System.Globalization.CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
            _process = new Process { StartInfo = psi };
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data == null) return;
                _lines.Enqueue(e.Data);
                if (e.Data.StartsWith("ready", StringComparison.Ordinal)) Ready.Set();
                else Progress.Set();
            };
            _process.ErrorDataReceived += (_, e) => { if (e.Data != null) _errors.Enqueue(e.Data); };
            _process.Start();
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public ManualResetEventSlim Ready { get; } = new ManualResetEventSlim();

        /// <summary>Set at the first line after "ready": the stream flows.</summary>
        public ManualResetEventSlim Progress { get; } = new ManualResetEventSlim();

        public string ReadyLine
        {
            get
            {
                foreach (string line in _lines) if (line.StartsWith("ready", StringComparison.Ordinal)) return line;
                return "";
            }
        }

        public bool HasExited => _process.HasExited;

        /// <summary>SIGKILL (Process.Kill on Unix is kill -9), then wait until it is gone and its output has all come.</summary>
        public void Kill()
        {
            try { _process.Kill(); } catch (InvalidOperationException) { } // it ended already
            _process.WaitForExit();
        }

        /// <summary>Every line it printed; call after <see cref="Kill"/>.</summary>
        public string[] Lines => _lines.ToArray();

        public string Errors => string.Join(" | ", _errors);

        public void Dispose()
        {
            Kill();
            _process.Dispose();
            Ready.Dispose();
            Progress.Dispose();
        }
    }
}
