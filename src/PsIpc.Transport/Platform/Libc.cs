using System;
using System.Runtime.InteropServices;

namespace PsIpc.Transport.Platform
{
    /// <summary>
    /// Every libc function PsIpc calls, declared once, with the constants that go with them. Only declarations and
    /// numbers live here; the classes next to it (UnixFiles, FileStatus, Futex, UnixNative) give them meaning.
    /// Descriptors that PsIpc opens are <see cref="SafeFd"/>s as soon as open(2) returns; parameters that take a
    /// descriptor take a SafeHandle, so the runtime keeps it alive (and unclosed) for the length of the call.
    /// Linux is what runs here; the macOS numbers are from its headers and untested.
    /// </summary>
    internal static unsafe class Libc
    {
        private const string Library = "libc";

        public static readonly bool IsLinux = RuntimeInformation.IsOSPlatform(OSPlatform.Linux);
        public static readonly bool IsMacOS = RuntimeInformation.IsOSPlatform(OSPlatform.OSX);
        public static readonly bool IsWindows = RuntimeInformation.IsOSPlatform(OSPlatform.Windows);

        /// <summary>errno values: the same on Linux and macOS unless two are given.</summary>
        public static class Errno
        {
            public const int EPERM = 1, ENOENT = 2, ESRCH = 3, ENXIO = 6, EACCES = 13, EEXIST = 17, ENOTDIR = 20, ENOSPC = 28, ERANGE = 34;
            public static readonly int ELOOP = IsLinux ? 40 : 62;
        }

        /// <summary>open(2) flags, which differ between Linux and the BSDs.</summary>
        public static class OpenFlags
        {
            public const int ReadOnly = 0, ReadWrite = 2;
            public static readonly int Create = IsLinux ? 0x40 : 0x200;
            public static readonly int Exclusive = IsLinux ? 0x80 : 0x800;
            public static readonly int NonBlocking = IsLinux ? 0x800 : 0x4;
            public static readonly int Directory = IsLinux ? 0x10000 : 0x100000;
            public static readonly int NoFollow = IsLinux ? 0x20000 : 0x100;
            public static readonly int CloseOnExec = IsLinux ? 0x80000 : 0x1000000;
            /// <summary>Linux only: a descriptor to look at (fstat) a file that may not be readable, such as a directory we cannot list.</summary>
            public const int PathOnlyLinux = 0x200000;
        }

        /// <summary>st_mode bits.</summary>
        public static class FileMode
        {
            public const uint TypeMask = 0xF000, Directory = 0x4000, Regular = 0x8000, SymbolicLink = 0xA000;
            public const uint PermissionMask = 0xFFF;
            public const uint OwnerOnly = 0x180;          // 0600: rw-------
            public const uint OwnerOnlyDirectory = 0x1C0; // 0700: rwx------
        }

        /// <summary>Linux statx(2): flags, mask bits and the offsets of struct statx (the same on every architecture).</summary>
        public static class Statx
        {
            public const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, AtEmptyPath = 0x1000;
            public const uint MaskType = 0x1, MaskMode = 0x2, MaskUid = 0x8, MaskSize = 0x200;
            public const int UidOffset = 20, ModeOffset = 28, SizeOffset = 40;
            public const int BufferSize = 256;
        }

        /// <summary>macOS struct stat with 64-bit inodes: st_mode u16 @4, st_uid u32 @16, st_size i64 @96.</summary>
        public static class MacStat
        {
            public const int ModeOffset = 4, UidOffset = 16, SizeOffset = 96;
            public const int BufferSize = 256;
        }

        // ---- files ----
        // Paths go as LPStr, which .NET marshals as UTF-8 on Unix. BestFitMapping = false: no code page's
        // "best fit" may ever turn a character of a path into another one ('/' or '.').

        /// <summary>open(2), its descriptor owned by a <see cref="SafeFd"/> at once (invalid on failure; errno in <see cref="LastError"/>).</summary>
        public static SafeFd Open(string path, int flags, uint mode) => new SafeFd(OpenRaw(path, flags, mode));

        // Returns a C int: declared so, because a SafeHandle return would read a pointer-sized register (-1 would not be -1).
        [DllImport(Library, EntryPoint = "open", SetLastError = true, BestFitMapping = false)]
        private static extern int OpenRaw([MarshalAs(UnmanagedType.LPStr)] string path, int flags, uint mode);

        /// <summary>Only <see cref="SafeFd"/> closes a descriptor.</summary>
        [DllImport(Library, EntryPoint = "close")]
        public static extern int Close(int fd);

        [DllImport(Library, EntryPoint = "unlink", SetLastError = true, BestFitMapping = false)]
        public static extern int Unlink([MarshalAs(UnmanagedType.LPStr)] string path);

        [DllImport(Library, EntryPoint = "mkdir", SetLastError = true, BestFitMapping = false)]
        public static extern int MakeDirectory([MarshalAs(UnmanagedType.LPStr)] string path, uint mode);

        [DllImport(Library, EntryPoint = "chmod", SetLastError = true, BestFitMapping = false)]
        public static extern int ChangeMode([MarshalAs(UnmanagedType.LPStr)] string path, uint mode);

        /// <summary>Returns the error number itself (0 on success), not -1 and errno.</summary>
        [DllImport(Library, EntryPoint = "posix_fallocate")]
        public static extern int PosixFallocate(SafeHandle fd, long offset, long length);

        /// <summary>Linux. <paramref name="dirfd"/> is the file itself with AT_EMPTY_PATH, or <see cref="SafeFd.CurrentDirectory"/>.</summary>
        [DllImport(Library, EntryPoint = "statx", SetLastError = true, BestFitMapping = false)]
        public static extern int StatX(SafeHandle dirfd, [MarshalAs(UnmanagedType.LPStr)] string path, int flags, uint mask, byte* buffer);

        [DllImport(Library, EntryPoint = "fstat", SetLastError = true)]
        public static extern int FStatMacArm64(SafeHandle fd, byte* buffer);

        [DllImport(Library, EntryPoint = "fstat$INODE64", SetLastError = true)]
        public static extern int FStatMacX64(SafeHandle fd, byte* buffer);

        // ---- users and processes ----

        [DllImport(Library, EntryPoint = "geteuid")]
        public static extern uint GetEffectiveUserId();

        /// <summary>Returns the error number itself (0 on success; ERANGE: a larger buffer is needed).</summary>
        [DllImport(Library, EntryPoint = "getpwuid_r")]
        public static extern int GetPasswordEntry(uint uid, byte* passwd, byte* buffer, UIntPtr bufferLength, byte** result);

        [DllImport(Library, EntryPoint = "kill", SetLastError = true)]
        public static extern int Kill(int pid, int signal);

        // ---- sockets (the Socket keeps its own descriptor) ----

        [DllImport(Library, EntryPoint = "getsockopt", SetLastError = true)]
        public static extern int GetSocketOption(IntPtr socket, int level, int optionName, void* optionValue, ref uint optionLength);

        [DllImport(Library, EntryPoint = "getpeereid", SetLastError = true)]
        public static extern int GetPeerEffectiveId(IntPtr socket, out uint uid, out uint gid);

        public const int SolSocketLinux = 1, SoPeerCredLinux = 17;

        /// <summary>recv(2) on a socket's descriptor; the SafeHandle keeps it open (and its number unreused) for the call.</summary>
        [DllImport(Library, EntryPoint = "recv", SetLastError = true)]
        public static extern IntPtr Receive(SafeHandle socket, byte* buffer, UIntPtr length, int flags);

        /// <summary>send(2), as <see cref="Receive"/>.</summary>
        [DllImport(Library, EntryPoint = "send", SetLastError = true)]
        public static extern IntPtr Send(SafeHandle socket, byte* buffer, UIntPtr length, int flags);

        /// <summary>recv(2)/send(2) flags: return at once (EAGAIN) rather than wait, whatever the descriptor's mode; no SIGPIPE
        /// for a write to a gone peer (Linux; macOS sockets have SO_NOSIGPIPE, which .NET sets).</summary>
        public static readonly int MsgDontWait = IsLinux ? 0x40 : 0x80;
        public const int MsgNoSignalLinux = 0x4000;

        /// <summary>errno of a non-blocking call that found nothing to do, and of a call a signal interrupted.</summary>
        public static readonly int EAGAIN = IsLinux ? 11 : 35;
        public const int EINTR = 4;
        public static readonly int ECONNRESET = IsLinux ? 104 : 54;
        public const int EPIPE = 32;

        // ---- futex (Linux, through syscall(2): glibc has no wrapper) ----

        [DllImport(Library, EntryPoint = "syscall", SetLastError = true)]
        public static extern long SyscallFutex(long number, int* address, int operation, int value, Timespec* timeout, IntPtr address2, int value3);

        [StructLayout(LayoutKind.Sequential)]
        public struct Timespec
        {
            public long Seconds;
            public long Nanoseconds;
        }

        public static int LastError => Marshal.GetLastWin32Error();
    }
}
