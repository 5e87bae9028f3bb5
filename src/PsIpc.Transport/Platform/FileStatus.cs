using System.Runtime.InteropServices;

namespace PsIpc.Transport.Platform
{
    /// <summary>
    /// Owner, type, permissions and size of a file, from one statx (Linux; its layout is the same on every
    /// architecture, unlike struct stat) or fstat (macOS, untested here).
    /// </summary>
    internal readonly unsafe struct FileStatus
    {
        private FileStatus(uint uid, uint mode, long size)
        {
            Uid = uid;
            Mode = mode;
            Size = size;
        }

        public uint Uid { get; }

        /// <summary>st_mode: type bits and permission bits.</summary>
        public uint Mode { get; }

        public long Size { get; }

        public uint Permissions => Mode & Libc.FileMode.PermissionMask;

        public bool IsDirectory => (Mode & Libc.FileMode.TypeMask) == Libc.FileMode.Directory;

        public bool IsRegularFile => (Mode & Libc.FileMode.TypeMask) == Libc.FileMode.Regular;

        public bool IsSymbolicLink => (Mode & Libc.FileMode.TypeMask) == Libc.FileMode.SymbolicLink;

        /// <summary>The status of an open descriptor. False (errno in <see cref="Libc.LastError"/>) when it cannot be read.</summary>
        public static bool TryGet(SafeHandle fd, out FileStatus status)
        {
            status = default;
            if (Libc.IsLinux)
            {
                byte* buffer = stackalloc byte[Libc.Statx.BufferSize];
                if (Libc.StatX(fd, string.Empty, Libc.Statx.AtEmptyPath, AllFields, buffer) != 0) return false;
                status = FromStatx(buffer);
                return true;
            }
            if (Libc.IsMacOS)
            {
                byte* buffer = stackalloc byte[Libc.MacStat.BufferSize];
                int rc = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? Libc.FStatMacArm64(fd, buffer) : Libc.FStatMacX64(fd, buffer);
                if (rc != 0) return false;
                status = new FileStatus(*(uint*)(buffer + Libc.MacStat.UidOffset), *(ushort*)(buffer + Libc.MacStat.ModeOffset), *(long*)(buffer + Libc.MacStat.SizeOffset));
                return true;
            }
            return false;
        }

        /// <summary>The status of a path itself, a symbolic link not followed. Linux only; false elsewhere.</summary>
        public static bool TryGetNoFollow(string path, out FileStatus status)
        {
            status = default;
            if (!Libc.IsLinux) return false;
            byte* buffer = stackalloc byte[Libc.Statx.BufferSize];
            if (Libc.StatX(SafeFd.CurrentDirectory, path, Libc.Statx.AtSymlinkNoFollow, AllFields, buffer) != 0) return false;
            status = FromStatx(buffer);
            return true;
        }

        private const uint AllFields = Libc.Statx.MaskType | Libc.Statx.MaskMode | Libc.Statx.MaskUid | Libc.Statx.MaskSize;

        private static FileStatus FromStatx(byte* buffer) =>
            new FileStatus(*(uint*)(buffer + Libc.Statx.UidOffset), *(ushort*)(buffer + Libc.Statx.ModeOffset), *(long*)(buffer + Libc.Statx.SizeOffset));
    }
}
