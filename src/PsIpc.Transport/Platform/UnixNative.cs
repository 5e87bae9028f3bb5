using System;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace PsIpc.Transport.Platform
{
    /// <summary>The few libc calls the Unix transports need that .NET Standard does not expose.</summary>
    internal static class UnixNative
    {
        private const int SOL_SOCKET_LINUX = 1;
        private const int SO_PEERCRED_LINUX = 17;

        public static bool IsLinux => RuntimeInformation.IsOSPlatform(OSPlatform.Linux);
        public static bool IsMacOS => RuntimeInformation.IsOSPlatform(OSPlatform.OSX);
        public static bool IsWindows => RuntimeInformation.IsOSPlatform(OSPlatform.Windows);

        /// <summary>sun_path holds 108 bytes on Linux and 104 on macOS/BSD, the terminating NUL included.</summary>
        public static int MaxSocketPathBytes => IsLinux ? 107 : 103;

        [DllImport("libc", EntryPoint = "geteuid")]
        private static extern uint geteuid();

        [DllImport("libc", EntryPoint = "chmod", SetLastError = true)]
        private static extern int chmod([MarshalAs(UnmanagedType.LPStr)] string path, uint mode);

        [DllImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
        private static extern unsafe int getsockopt(IntPtr socket, int level, int optionName, void* optionValue, ref uint optionLength);

        [DllImport("libc", EntryPoint = "getpeereid", SetLastError = true)]
        private static extern int getpeereid(IntPtr socket, out uint uid, out uint gid);

        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        private static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc", EntryPoint = "close")]
        private static extern int close(int fd);

        private const int ENXIO = 6; // open() of a socket file: "No such device or address" (Linux and macOS)

        public static uint EffectiveUserId => geteuid();

        /// <summary>
        /// True when <paramref name="path"/> is a socket file. open() fails with ENXIO on sockets only;
        /// O_NONBLOCK keeps it from blocking on a FIFO. (stat's layout differs per platform; this does not.)
        /// </summary>
        public static bool IsSocketFile(string path)
        {
            int nonBlock = IsLinux ? 0x800 : 0x4;
            int fd = open(path, nonBlock);
            if (fd >= 0)
            {
                close(fd);
                return false;
            }
            return Marshal.GetLastWin32Error() == ENXIO;
        }

        /// <summary>
        /// The owner and mode of a directory (symbolic links followed), or false when it cannot be read.
        /// </summary>
        public static bool TryGetDirectoryOwnerAndMode(string path, out uint uid, out uint mode)
        {
            uid = 0;
            mode = 0;
            // O_DIRECTORY, and on Linux O_PATH: a directory we may not list can still be looked at.
            int flags = IsLinux ? 0x10000 | 0x200000 : 0x100000;
            int fd = open(path, flags);
            if (fd < 0) return false;
            try
            {
                return SharedMemory.ShmNative.TryGetOwnerAndMode(fd, out uid, out mode);
            }
            finally
            {
                close(fd);
            }
        }

        public static void SetMode(string path, uint mode)
        {
            if (chmod(path, mode) != 0)
            {
                throw new System.IO.IOException($"chmod {Convert.ToString(mode, 8)} '{path}' failed (errno {Marshal.GetLastWin32Error()}).");
            }
        }

        /// <summary>The user id of the process at the other end of a connected Unix socket.</summary>
        public static unsafe uint GetPeerUserId(Socket socket)
        {
            IntPtr fd = socket.Handle;
            if (IsLinux)
            {
                // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
                int* cred = stackalloc int[3];
                uint size = 12;
                if (getsockopt(fd, SOL_SOCKET_LINUX, SO_PEERCRED_LINUX, cred, ref size) != 0)
                {
                    throw new SocketException(Marshal.GetLastWin32Error());
                }
                return (uint)cred[1];
            }
            if (getpeereid(fd, out uint uid, out _) != 0)
            {
                throw new SocketException(Marshal.GetLastWin32Error());
            }
            return uid;
        }
    }
}
