using System;
using System.IO;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// The directory of a user's segment files on Unix: /dev/shm/psipc-&lt;uid&gt; on Linux, $TMPDIR/psipc-&lt;uid&gt; on
    /// macOS, or the absolute path in the environment variable PSIPC_SHM_DIR. It must be a real directory (not a
    /// symbolic link) of this user with mode 0700; PsIpc creates it so.
    /// The variable is the way out when another user has created the default directory first (its name is
    /// predictable, and /dev/shm is writable by everyone): PsIpc then refuses it and names that user. It is read on
    /// every use, so every process that shares segments must have the same value (children inherit it).
    /// </summary>
    internal static class UnixSegmentDirectory
    {
        public const string EnvironmentVariable = "PSIPC_SHM_DIR";

        /// <summary>The directory path (not checked).</summary>
        public static string Path
        {
            get
            {
                string? chosen = Environment.GetEnvironmentVariable(EnvironmentVariable);
                if (!string.IsNullOrEmpty(chosen))
                {
                    if (!System.IO.Path.IsPathRooted(chosen))
                    {
                        throw new IpcException(IpcErrorKind.InvalidSharedMemoryDirectory,
                            $"{EnvironmentVariable} is '{chosen}', not an absolute path: processes in other directories would not find the same segments. Set it to an absolute path.", chosen);
                    }
                    return System.IO.Path.GetFullPath(chosen);
                }
                string root = UnixNative.IsLinux && Directory.Exists("/dev/shm") ? "/dev/shm" : System.IO.Path.GetTempPath();
                return System.IO.Path.Combine(root, "psipc-" + UnixNative.EffectiveUserId);
            }
        }

        /// <summary>Creates the directory (mode 0700) unless it exists, then checks it.</summary>
        public static void Ensure(string name)
        {
            string dir = Path;
            int errno = UnixFiles.MakeDirectory(dir, Libc.FileMode.OwnerOnlyDirectory);
            if (errno == Libc.Errno.ENOENT)
            {
                throw new IpcException(IpcErrorKind.InvalidSharedMemoryDirectory,
                    $"Cannot create the shared memory directory {dir}: its parent directory does not exist.", name);
            }
            if (errno != 0 && errno != Libc.Errno.EEXIST) throw UnixSegmentStore.OpenError(name, dir, errno);
            Check(name, mustExist: false);
        }

        /// <summary>
        /// The directory must be a real directory (not a symlink) of this user with mode 0700. False when it does not
        /// exist and <paramref name="mustExist"/> is false; SharedMemoryNotFound when it must.
        /// </summary>
        public static bool Check(string name, bool mustExist)
        {
            string dir = Path;
            using (SafeFd fd = UnixFiles.OpenDirectoryNoFollow(dir))
            {
                if (fd.IsInvalid)
                {
                    int errno = Libc.LastError;
                    if (errno == Libc.Errno.ENOENT)
                    {
                        if (!mustExist) return false;
                        throw new IpcException(IpcErrorKind.SharedMemoryNotFound,
                            $"No shared memory segment is named '{name}' ({System.IO.Path.Combine(dir, name)} does not exist).", name);
                    }
                    throw NotADirectory(name, dir, errno);
                }
                if (!FileStatus.TryGet(fd, out FileStatus status)) throw UnixSegmentStore.OpenError(name, dir, Libc.LastError);
                if (status.Uid != UnixNative.EffectiveUserId) throw NotOwned(name, dir, status.Uid, "a directory");
                if (!status.IsDirectory || status.Permissions != Libc.FileMode.OwnerOnlyDirectory)
                {
                    throw new IpcException(IpcErrorKind.AccessDenied,
                        $"The shared memory directory {dir} is not safe: it has mode {Convert.ToString(status.Permissions, 8)}; PsIpc needs a directory of yours with mode 700. Change its mode (chmod 700) or remove it.", name);
                }
                return true;
            }
        }

        /// <summary>
        /// A symbolic link or a file in the directory's place (O_NOFOLLOW|O_DIRECTORY fails with ENOTDIR or ELOOP):
        /// whose it is decides between "squatted by another user" and "yours to fix".
        /// </summary>
        private static IpcException NotADirectory(string name, string dir, int errno)
        {
            if ((UnixFiles.IsSymlinkError(errno) || errno == Libc.Errno.ENOTDIR) && FileStatus.TryGetNoFollow(dir, out FileStatus status))
            {
                string what = status.IsSymbolicLink ? "a symbolic link" : "a file";
                if (status.Uid != UnixNative.EffectiveUserId) return NotOwned(name, dir, status.Uid, what);
                return new IpcException(IpcErrorKind.AccessDenied,
                    $"The shared memory directory {dir} is {what}, not a directory; PsIpc never follows a symbolic link. Remove it, or {UseAnother}", name);
            }
            return UnixSegmentStore.OpenError(name, dir, errno);
        }

        private static string UseAnother =>
            $"set the environment variable {EnvironmentVariable} to the absolute path of a directory of your own " +
            "(PsIpc creates it with mode 700 if its parent exists) in every process that shares segments.";

        private static IpcException NotOwned(string name, string dir, uint owner, string what) =>
            new IpcException(IpcErrorKind.SharedMemoryDirectoryNotOwned,
                $"The shared memory directory {dir} is {what} of {UnixNative.DescribeUser(owner)}, not of you (uid {UnixNative.EffectiveUserId}): " +
                "another user created it first, and PsIpc never uses a directory it does not own. Ask that user or an administrator to remove it, or " +
                UseAnother, name);
    }
}
