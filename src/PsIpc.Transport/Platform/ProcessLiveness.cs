using System;
using System.Diagnostics;

namespace PsIpc.Transport.Platform
{
    /// <summary>Whether a process id belongs to a running process, asked the platform's way (chosen once).</summary>
    internal static class ProcessLiveness
    {
        private const int SignalNone = 0; // kill(pid, 0): the checks of kill(2), no signal

        private static readonly Func<int, bool> s_isAlive = Libc.IsWindows ? IsAliveWindows : IsAliveUnix;

        /// <summary>
        /// False only when the process certainly does not exist. A process of another user (EPERM) is alive. A
        /// recycled pid looks alive: then a lock waiter waits for its timeout instead of recovering.
        /// </summary>
        public static bool IsAlive(int pid) => pid > 0 && s_isAlive(pid);

        private static bool IsAliveUnix(int pid) => Libc.Kill(pid, SignalNone) == 0 || Libc.LastError != Libc.Errno.ESRCH;

        private static bool IsAliveWindows(int pid)
        {
            try
            {
                using (Process p = Process.GetProcessById(pid)) return !p.HasExited;
            }
            catch (ArgumentException)
            {
                return false;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }
    }
}
