using System;
using System.IO;
using System.Runtime.InteropServices;

namespace PsIpc.Transport.Platform
{
    /// <summary>
    /// The file operations .NET Standard does not offer the careful way: create only a new file, never follow a
    /// symbolic link, look at an open file's owner and mode, reserve a file's pages. Each open returns a
    /// <see cref="SafeFd"/> (check IsInvalid, then <see cref="Libc.LastError"/>), each other call 0 or an errno.
    /// </summary>
    internal static class UnixFiles
    {
        /// <summary>Creates a new file (never an existing one, never through a symlink) with <paramref name="mode"/>.</summary>
        public static SafeFd CreateExclusive(string path, uint mode) =>
            Libc.Open(path, Libc.OpenFlags.ReadWrite | Libc.OpenFlags.Create | Libc.OpenFlags.Exclusive | Libc.OpenFlags.NoFollow | Libc.OpenFlags.CloseOnExec, mode);

        /// <summary>Opens an existing file read-write without following a symlink.</summary>
        public static SafeFd OpenExisting(string path) =>
            Libc.Open(path, Libc.OpenFlags.ReadWrite | Libc.OpenFlags.NoFollow | Libc.OpenFlags.CloseOnExec, 0);

        /// <summary>Opens a directory without following a symlink (to check its owner and mode).</summary>
        public static SafeFd OpenDirectoryNoFollow(string path) =>
            Libc.Open(path, Libc.OpenFlags.ReadOnly | Libc.OpenFlags.Directory | Libc.OpenFlags.NoFollow | Libc.OpenFlags.CloseOnExec, 0);

        /// <summary>
        /// Opens a directory (symbolic links followed) only to look at it: on Linux with O_PATH, so that a directory
        /// we may not list can still be looked at.
        /// </summary>
        public static SafeFd OpenDirectoryToLookAt(string path) =>
            Libc.Open(path, Libc.OpenFlags.Directory | Libc.OpenFlags.CloseOnExec | (Libc.IsLinux ? Libc.OpenFlags.PathOnlyLinux : 0), 0);

        /// <summary>Opens without blocking (a FIFO would block) and without reading: for probing what a path is.</summary>
        public static SafeFd OpenToProbe(string path) =>
            Libc.Open(path, Libc.OpenFlags.NonBlocking | Libc.OpenFlags.CloseOnExec, 0);

        public static bool IsSymlinkError(int errno) => errno == Libc.Errno.ELOOP;

        public static int MakeDirectory(string path, uint mode) => Libc.MakeDirectory(path, mode) == 0 ? 0 : Libc.LastError;

        public static int Unlink(string path) => Libc.Unlink(path) == 0 ? 0 : Libc.LastError;

        public static void SetMode(string path, uint mode)
        {
            if (Libc.ChangeMode(path, mode) != 0)
            {
                throw new IOException($"chmod {Convert.ToString(mode, 8)} '{path}' failed (errno {Libc.LastError}).");
            }
        }

        /// <summary>
        /// Allocates every page of a file up front (Linux: posix_fallocate), so that a later write into a page that
        /// tmpfs cannot supply fails here instead of raising SIGBUS. 0 or an errno. macOS has no posix_fallocate:
        /// there the file stays sparse.
        /// </summary>
        public static int Reserve(SafeHandle file, long length) => Libc.IsLinux ? Libc.PosixFallocate(file, 0, length) : 0;
    }
}
