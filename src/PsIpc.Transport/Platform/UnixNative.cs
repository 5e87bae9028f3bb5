using System;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace PsIpc.Transport.Platform
{
    /// <summary>
    /// What the transports ask of the operating system beyond .NET Standard: which system this is, who we are
    /// and who is at the other end of a Unix socket, and what a path is. Built on <see cref="Libc"/>.
    /// </summary>
    internal static unsafe class UnixNative
    {
        public static bool IsLinux => Libc.IsLinux;
        public static bool IsMacOS => Libc.IsMacOS;
        public static bool IsWindows => Libc.IsWindows;

        /// <summary>sun_path holds 108 bytes on Linux and 104 on macOS/BSD, the terminating NUL included.</summary>
        public static int MaxSocketPathBytes => IsLinux ? 107 : 103;

        public static uint EffectiveUserId => Libc.GetEffectiveUserId();

        /// <summary>The login name of a user id, or null when it has none.</summary>
        public static string? UserName(uint uid)
        {
            // struct passwd starts with char *pw_name on Linux and macOS; 128 bytes hold either layout.
            byte* passwd = stackalloc byte[128];
            for (int size = 1024; size <= 1024 * 1024; size *= 4)
            {
                var buffer = new byte[size];
                fixed (byte* b = buffer)
                {
                    byte* result = null;
                    int rc = Libc.GetPasswordEntry(uid, passwd, b, (UIntPtr)size, &result);
                    if (rc == 0) return result == null ? null : Marshal.PtrToStringAnsi(*(IntPtr*)passwd);
                    if (rc != Libc.Errno.ERANGE) return null;
                }
            }
            return null;
        }

        /// <summary>"uid 65534 (nobody)", or "uid 65534" for an id without a name.</summary>
        public static string DescribeUser(uint uid)
        {
            string? name = UserName(uid);
            return name == null ? $"uid {uid}" : $"uid {uid} ({name})";
        }

        /// <summary>
        /// True when <paramref name="path"/> is a socket file. open() fails with ENXIO on sockets only;
        /// O_NONBLOCK keeps it from blocking on a FIFO. (stat's layout differs per platform; this does not.)
        /// </summary>
        public static bool IsSocketFile(string path)
        {
            using (SafeFd fd = UnixFiles.OpenToProbe(path))
            {
                return fd.IsInvalid && Libc.LastError == Libc.Errno.ENXIO;
            }
        }

        /// <summary>The owner and mode of a directory (symbolic links followed), or false when it cannot be read.</summary>
        public static bool TryGetDirectoryOwnerAndMode(string path, out uint uid, out uint mode)
        {
            uid = 0;
            mode = 0;
            using (SafeFd fd = UnixFiles.OpenDirectoryToLookAt(path))
            {
                if (fd.IsInvalid || !FileStatus.TryGet(fd, out FileStatus status)) return false;
                uid = status.Uid;
                mode = status.Mode;
                return true;
            }
        }

        public static void SetMode(string path, uint mode) => UnixFiles.SetMode(path, mode);

        /// <summary>The user id of the process at the other end of a connected Unix socket.</summary>
        public static uint GetPeerUserId(Socket socket)
        {
            IntPtr fd = socket.Handle;
            if (IsLinux)
            {
                // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
                int* cred = stackalloc int[3];
                uint size = 12;
                if (Libc.GetSocketOption(fd, Libc.SolSocketLinux, Libc.SoPeerCredLinux, cred, ref size) != 0)
                {
                    throw new SocketException(Libc.LastError);
                }
                return (uint)cred[1];
            }
            if (Libc.GetPeerEffectiveId(fd, out uint uid, out _) != 0)
            {
                throw new SocketException(Libc.LastError);
            }
            return uid;
        }
    }
}
