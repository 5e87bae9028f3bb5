using System;
using System.Runtime.InteropServices;

namespace PsIpc.Transport.Platform
{
    /// <summary>
    /// The Linux futex: a process sleeps on a 32-bit word of shared memory until another process changes it and
    /// wakes it. The shared (not FUTEX_PRIVATE_FLAG) operations, because the word is in a mapping several processes
    /// share. The kernel reads the word itself: a word in a page that no longer exists fails with EFAULT, not SIGBUS.
    /// </summary>
    internal static unsafe class Futex
    {
        private const int FutexWait = 0, FutexWake = 1;

        private static readonly long s_syscall = SyscallNumber();

        /// <summary>True where a process can sleep on a word of shared memory (Linux x64, arm64, x86, arm).</summary>
        public static bool IsAvailable => s_syscall > 0;

        private static long SyscallNumber()
        {
            if (!Libc.IsLinux) return -1;
            switch (RuntimeInformation.ProcessArchitecture)
            {
                case Architecture.X64: return 202;
                case Architecture.Arm64: return 98;
                case Architecture.X86: return 240;
                case Architecture.Arm: return 240;
                default: return -1;
            }
        }

        /// <summary>
        /// Sleeps while *address == expected, at most <paramref name="milliseconds"/> (-1: no limit). Returns when
        /// woken, when the value differs, on a signal or at the timeout; the caller re-checks its condition.
        /// </summary>
        public static void Wait(int* address, int expected, int milliseconds)
        {
            if (milliseconds == 0) return;
            if (milliseconds < 0)
            {
                Libc.SyscallFutex(s_syscall, address, FutexWait, expected, null, IntPtr.Zero, 0);
                return;
            }
            Libc.Timespec timeout;
            timeout.Seconds = milliseconds / 1000;
            timeout.Nanoseconds = (milliseconds % 1000) * 1000000L;
            Libc.SyscallFutex(s_syscall, address, FutexWait, expected, &timeout, IntPtr.Zero, 0);
        }

        /// <summary>Wakes up to <paramref name="count"/> processes sleeping on the word.</summary>
        public static void Wake(int* address, int count)
        {
            Libc.SyscallFutex(s_syscall, address, FutexWake, count, null, IntPtr.Zero, 0);
        }
    }
}
