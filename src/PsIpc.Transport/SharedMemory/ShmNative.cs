using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// The libc calls shared memory needs on Unix: open with O_EXCL|O_NOFOLLOW, owner and mode of an open file,
    /// unlink, process liveness, and the Linux futex that lets a process sleep on a word inside the segment.
    /// </summary>
    internal static unsafe class ShmNative
    {
        public static bool IsLinux => RuntimeInformation.IsOSPlatform(OSPlatform.Linux);
        public static bool IsMacOS => RuntimeInformation.IsOSPlatform(OSPlatform.OSX);
        public static bool IsWindows => RuntimeInformation.IsOSPlatform(OSPlatform.Windows);

        public const int EEXIST = 17, ENOENT = 2, EACCES = 13, EPERM = 1, ESRCH = 3, ELOOP_LINUX = 40, ELOOP_MAC = 62;

        // open(2) flags differ between Linux and the BSDs.
        private static int O_RDWR => 2;
        private static int O_CREAT => IsLinux ? 0x40 : 0x200;
        private static int O_EXCL => IsLinux ? 0x80 : 0x800;
        private static int O_NOFOLLOW => IsLinux ? 0x20000 : 0x100;
        private static int O_CLOEXEC => IsLinux ? 0x80000 : 0x1000000;
        private static int O_DIRECTORY => IsLinux ? 0x10000 : 0x100000;
        private static int O_RDONLY => 0;

        [DllImport("libc", EntryPoint = "posix_fallocate")]
        private static extern int posix_fallocate(int fd, long offset, long length);

        public const int ENOSPC = 28;

        /// <summary>
        /// Allocates every page of a segment file up front (Linux: posix_fallocate, which returns the error
        /// number itself). Returns 0 or an errno. macOS has no posix_fallocate; there the file stays sparse.
        /// </summary>
        public static int Reserve(Microsoft.Win32.SafeHandles.SafeFileHandle file, long length)
        {
            if (!IsLinux) return 0;
            bool added = false;
            try
            {
                file.DangerousAddRef(ref added);
                return posix_fallocate((int)file.DangerousGetHandle(), 0, length);
            }
            finally
            {
                if (added) file.DangerousRelease();
            }
        }

        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        private static extern int open_([MarshalAs(UnmanagedType.LPStr)] string path, int flags, uint mode);

        [DllImport("libc", EntryPoint = "close")]
        public static extern int Close(int fd);

        [DllImport("libc", EntryPoint = "unlink", SetLastError = true)]
        private static extern int unlink_([MarshalAs(UnmanagedType.LPStr)] string path);

        [DllImport("libc", EntryPoint = "mkdir", SetLastError = true)]
        private static extern int mkdir_([MarshalAs(UnmanagedType.LPStr)] string path, uint mode);

        [DllImport("libc", EntryPoint = "geteuid")]
        private static extern uint geteuid_();

        [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
        private static extern int kill_(int pid, int signal);

        [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
        private static extern int statx_(int dirfd, [MarshalAs(UnmanagedType.LPStr)] string path, int flags, uint mask, byte* buffer);

        [DllImport("libc", EntryPoint = "fstat", SetLastError = true)]
        private static extern int fstat_mac_arm64(int fd, byte* buffer);

        [DllImport("libc", EntryPoint = "fstat$INODE64", SetLastError = true)]
        private static extern int fstat_mac_x64(int fd, byte* buffer);

        [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
        private static extern long syscall_futex(long number, int* address, int operation, int value, Timespec* timeout, IntPtr address2, int value3);

        [StructLayout(LayoutKind.Sequential)]
        private struct Timespec
        {
            public long Seconds;
            public long Nanoseconds;
        }

        public static uint EffectiveUserId => geteuid_();

        public static int LastError => Marshal.GetLastWin32Error();

        /// <summary>Creates a new file (never an existing one, never through a symlink), mode 0600. -1 with errno on failure.</summary>
        public static int CreateExclusive(string path) => open_(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0x180);

        /// <summary>Opens an existing file read-write without following a symlink. -1 with errno on failure.</summary>
        public static int OpenExisting(string path) => open_(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);

        /// <summary>Opens a directory without following a symlink (to check its owner and mode).</summary>
        public static int OpenDirectory(string path) => open_(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);

        public static bool IsSymlinkError(int errno) => errno == (IsLinux ? ELOOP_LINUX : ELOOP_MAC);

        public static int MakeDirectory(string path, uint mode) => mkdir_(path, mode) == 0 ? 0 : LastError;

        public static int Unlink(string path) => unlink_(path) == 0 ? 0 : LastError;

        /// <summary>Owner, permission bits (lower 12 bits of st_mode) and file type bits of an open file.</summary>
        public static bool TryGetOwnerAndMode(int fd, out uint uid, out uint mode)
        {
            uid = 0;
            mode = 0;
            byte* buffer = stackalloc byte[256];
            for (int i = 0; i < 256; i++) buffer[i] = 0;
            if (IsLinux)
            {
                // struct statx has the same layout on every Linux architecture (unlike struct stat):
                // stx_mask u32 @0, stx_blksize u32 @4, stx_attributes u64 @8, stx_nlink u32 @16, stx_uid u32 @20,
                // stx_gid u32 @24, stx_mode u16 @28. AT_EMPTY_PATH (0x1000) makes it describe the fd itself.
                const uint STATX_TYPE_MODE_UID = 0x1 | 0x2 | 0x8;
                if (statx_(fd, string.Empty, 0x1000, STATX_TYPE_MODE_UID, buffer) != 0) return false;
                uid = *(uint*)(buffer + 20);
                mode = *(ushort*)(buffer + 28);
                return true;
            }
            if (IsMacOS)
            {
                // Untested here: macOS struct stat (64-bit inodes): st_dev i32 @0, st_mode u16 @4, st_nlink u16 @6,
                // st_ino u64 @8, st_uid u32 @16.
                int rc = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? fstat_mac_arm64(fd, buffer) : fstat_mac_x64(fd, buffer);
                if (rc != 0) return false;
                mode = *(ushort*)(buffer + 4);
                uid = *(uint*)(buffer + 16);
                return true;
            }
            return false;
        }

        public const uint S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000;

        public const int ENOTDIR = 20;

        public const uint S_IFLNK = 0xA000;

        /// <summary>Owner and mode of a path itself, a symbolic link not followed (Linux: statx with AT_SYMLINK_NOFOLLOW).</summary>
        public static bool TryGetOwnerAndModeNoFollow(string path, out uint uid, out uint mode)
        {
            uid = 0;
            mode = 0;
            if (!IsLinux) return false;
            byte* buffer = stackalloc byte[256];
            const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
            if (statx_(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0x1 | 0x2 | 0x8, buffer) != 0) return false;
            uid = *(uint*)(buffer + 20);
            mode = *(ushort*)(buffer + 28);
            return true;
        }

        [DllImport("libc", EntryPoint = "getpwuid_r")]
        private static extern int getpwuid_r(uint uid, byte* passwd, byte* buffer, UIntPtr bufferLength, byte** result);

        /// <summary>The login name of a user id, or null when it has none (getpwuid_r: thread-safe).</summary>
        public static string UserName(uint uid)
        {
            // struct passwd starts with char *pw_name on Linux and macOS; 128 bytes hold either layout.
            byte* passwd = stackalloc byte[128];
            for (int size = 1024; size <= 1024 * 1024; size *= 4)
            {
                byte[] buffer = new byte[size];
                fixed (byte* b = buffer)
                {
                    byte* result = null;
                    int rc = getpwuid_r(uid, passwd, b, (UIntPtr)size, &result);
                    if (rc == 0) return result == null ? null : Marshal.PtrToStringAnsi(*(IntPtr*)passwd);
                    if (rc != 34) return null; // ERANGE (34 on Linux and macOS): a larger buffer
                }
            }
            return null;
        }

        /// <summary>"uid 65534 (nobody)", or "uid 65534" for an id without a name.</summary>
        public static string DescribeUser(uint uid)
        {
            string name = UserName(uid);
            return name == null ? $"uid {uid}" : $"uid {uid} ({name})";
        }

        [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
        private static extern int statx_handle(SafeHandle dirfd, [MarshalAs(UnmanagedType.LPStr)] string path, int flags, uint mask, byte* buffer);

        [DllImport("libc", EntryPoint = "fstat", SetLastError = true)]
        private static extern int fstat_handle_mac_arm64(SafeHandle fd, byte* buffer);

        [DllImport("libc", EntryPoint = "fstat$INODE64", SetLastError = true)]
        private static extern int fstat_handle_mac_x64(SafeHandle fd, byte* buffer);

        /// <summary>
        /// The size of an open file now (one fstat-like call): what a mapping of it may touch without SIGBUS.
        /// -1 with errno when it cannot be read.
        /// </summary>
        public static long GetFileSize(SafeHandle file)
        {
            byte* buffer = stackalloc byte[256];
            if (IsLinux)
            {
                // struct statx: stx_size u64 @40. STATX_SIZE = 0x200; AT_EMPTY_PATH = 0x1000.
                if (statx_handle(file, string.Empty, 0x1000, 0x200, buffer) != 0) return -1;
                return *(long*)(buffer + 40);
            }
            if (IsMacOS)
            {
                // Untested here: macOS struct stat (64-bit inodes): st_size i64 @96.
                int rc = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? fstat_handle_mac_arm64(file, buffer) : fstat_handle_mac_x64(file, buffer);
                return rc != 0 ? -1 : *(long*)(buffer + 96);
            }
            return -1;
        }

        /// <summary>
        /// False only when the process certainly does not exist (ESRCH). A process of another user (EPERM)
        /// is alive. A recycled pid looks alive: then a lock waiter waits for its timeout instead of recovering.
        /// </summary>
        public static bool IsProcessAlive(int pid)
        {
            if (pid <= 0) return false;
            if (IsWindows)
            {
                try
                {
                    using (Process p = Process.GetProcessById(pid)) return !p.HasExited;
                }
                catch (ArgumentException) { return false; }
                catch (InvalidOperationException) { return false; }
            }
            if (kill_(pid, 0) == 0) return true;
            return LastError != ESRCH;
        }

        // ---- futex (Linux) ----

        private const int FUTEX_WAIT = 0, FUTEX_WAKE = 1; // shared (not FUTEX_PRIVATE_FLAG): the word is in a mapping several processes share
        private const int ETIMEDOUT = 110, EAGAIN = 11, EINTR = 4;

        private static readonly long FutexSyscall = GetFutexSyscallNumber();

        /// <summary>True where a process can sleep on a word of shared memory (Linux x64/arm64/x86/arm).</summary>
        public static bool HasFutex => FutexSyscall > 0;

        private static long GetFutexSyscallNumber()
        {
            if (!IsLinux) return -1;
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
        /// Sleeps while *address == expected, at most <paramref name="milliseconds"/> (-1: no limit).
        /// Returns when woken, when the value differs, on a signal or at the timeout; the caller re-checks.
        /// </summary>
        public static void FutexWait(int* address, int expected, int milliseconds)
        {
            if (milliseconds == 0) return;
            if (milliseconds < 0)
            {
                syscall_futex(FutexSyscall, address, FUTEX_WAIT, expected, null, IntPtr.Zero, 0);
                return;
            }
            Timespec ts;
            ts.Seconds = milliseconds / 1000;
            ts.Nanoseconds = (milliseconds % 1000) * 1000000L;
            syscall_futex(FutexSyscall, address, FUTEX_WAIT, expected, &ts, IntPtr.Zero, 0);
        }

        /// <summary>Wakes up to <paramref name="count"/> processes sleeping on the word.</summary>
        public static void FutexWake(int* address, int count)
        {
            syscall_futex(FutexSyscall, address, FUTEX_WAKE, count, null, IntPtr.Zero, 0);
        }
    }

    /// <summary>
    /// Sleeping until a word of shared memory changes: a futex on Linux; elsewhere (macOS, Windows: untested
    /// here) short sleeps that back off to 10 ms, because those systems have no cross-process wait on an address.
    /// </summary>
    internal static unsafe class SharedWait
    {
        /// <summary>Waits while *address == expected, up to <paramref name="milliseconds"/>; the caller re-checks its condition.</summary>
        /// <remarks>
        /// Without a futex the word is polled: then <paramref name="mapping"/>, when given, is checked between polls
        /// and the wait ends early when its file was truncated (the caller's own check then reports it).
        /// </remarks>
        public static void Wait(int* address, int expected, int milliseconds, CancellationToken cancellationToken, SharedMapping mapping = null)
        {
            if (milliseconds == 0) return;
            if (ShmNative.HasFutex)
            {
                // The kernel compares the word (and fails with EFAULT, no signal, when the file was truncated under
                // it): no read of it here, which keeps the unchecked touches of a sleeper to the minimum.
                if (!cancellationToken.CanBeCanceled)
                {
                    ShmNative.FutexWait(address, expected, milliseconds);
                    return;
                }
                // Ctrl+C wakes every sleeper on this word (in every process); the others find nothing changed and sleep again.
                using (cancellationToken.Register(state => ShmNative.FutexWake((int*)(IntPtr)state, int.MaxValue), (IntPtr)address))
                {
                    if (!cancellationToken.IsCancellationRequested) ShmNative.FutexWait(address, expected, milliseconds);
                }
                return;
            }
            if (Volatile.Read(ref *address) != expected) return;
            var sw = Stopwatch.StartNew();
            int sleep = 0;
            while (Volatile.Read(ref *address) == expected && !cancellationToken.IsCancellationRequested)
            {
                if (milliseconds >= 0 && sw.ElapsedMilliseconds >= milliseconds) return;
                Thread.Sleep(sleep);
                if (sleep < 10) sleep++;
                if (mapping != null && !mapping.IsIntact) return;
            }
        }

        public static void WakeAll(int* address)
        {
            if (ShmNative.HasFutex) ShmNative.FutexWake(address, int.MaxValue);
        }

        public static void WakeOne(int* address)
        {
            if (ShmNative.HasFutex) ShmNative.FutexWake(address, 1);
        }
    }
}
