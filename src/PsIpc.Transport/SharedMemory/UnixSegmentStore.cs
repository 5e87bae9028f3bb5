using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using Microsoft.Win32.SafeHandles;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// Linux and macOS: a file per segment in a directory of the user's own (<see cref="UnixSegmentDirectory"/>),
    /// created with O_EXCL|O_NOFOLLOW and mode 0600, opened only when it is a regular file of this user with that
    /// mode, and mapped with MemoryMappedFile.CreateFromFile (.NET's named maps throw on Unix).
    /// </summary>
    internal sealed class UnixSegmentStore : ISegmentStore
    {
        public string PathOf(string name) => Path.Combine(UnixSegmentDirectory.Path, name);

        public SharedMapping Create(string name, SharedMemoryKind kind, long capacity)
        {
            string path = PathOf(name);
            UnixSegmentDirectory.Ensure(name);
            using (SafeFd fd = UnixFiles.CreateExclusive(path, Libc.FileMode.OwnerOnly))
            {
                if (fd.IsInvalid)
                {
                    int errno = Libc.LastError;
                    if (errno == Libc.Errno.EEXIST)
                    {
                        throw new IpcException(IpcErrorKind.SharedMemoryNameInUse,
                            $"A shared memory segment named '{name}' exists already ({path}). Open it with New-SharedMemory -Name {name} -Open, or remove it with Remove-SharedMemory.", name);
                    }
                    throw OpenError(name, path, errno);
                }
                SharedMapping? mapping = null;
                try
                {
                    long total = SegmentHeader.Size + capacity;
                    FileStream stream = ToStream(fd, FileAccess.ReadWrite);
                    try
                    {
                        stream.SetLength(total);
                        // SetLength alone makes a sparse file: a later write into a page tmpfs cannot supply
                        // kills the process with SIGBUS. Reserve every page now, and fail here instead.
                        int reserveError = UnixFiles.Reserve(stream.SafeFileHandle, total);
                        if (reserveError != 0)
                        {
                            throw new IOException(reserveError == Libc.Errno.ENOSPC ? "not enough free space in /dev/shm" : "errno " + reserveError);
                        }
                    }
                    catch (IOException e)
                    {
                        stream.Dispose();
                        throw new IpcException(IpcErrorKind.SharedMemoryTooLarge, $"Cannot make the segment '{name}' {total} bytes: {e.Message}", name, e);
                    }
                    mapping = SharedMapping.FromFile(stream, total, name, path);
                    mapping.EnsureIntact(); // another process may have truncated the new file already
                    unsafe { SegmentHeader.Initialize(mapping.Pointer, kind, capacity); }
                    return mapping;
                }
                catch
                {
                    mapping?.Dispose();
                    UnixFiles.Unlink(path);
                    throw;
                }
            }
        }

        public SharedMapping Open(string name, out SharedMemoryKind kind, out long capacity)
        {
            string path = PathOf(name);
            UnixSegmentDirectory.Check(name, mustExist: true);
            // A creator maps and initializes right after O_EXCL: wait a moment for a header that is not written yet.
            DateTime giveUp = DateTime.UtcNow.AddSeconds(2);
            while (true)
            {
                using (SafeFd fd = UnixFiles.OpenExisting(path))
                {
                    if (fd.IsInvalid) throw OpenError(name, path, Libc.LastError);
                    CheckFile(name, path, fd);
                    FileStream stream = ToStream(fd, FileAccess.ReadWrite);
                    long length = stream.Length;
                    if (length < SegmentHeader.Size)
                    {
                        stream.Dispose();
                        if (DateTime.UtcNow < giveUp) { Thread.Sleep(10); continue; }
                        throw SegmentStore.Corrupt(name, path, $"the file has {length} bytes, less than the {SegmentHeader.Size}-byte header");
                    }
                    SharedMapping mapping = SharedMapping.FromFile(stream, length, name, path);
                    string? problem;
                    bool notInitialized;
                    try
                    {
                        mapping.EnsureIntact(); // the file may have shrunk since its length was read
                        unsafe
                        {
                            problem = SegmentHeader.Validate(mapping.Pointer, length, out kind, out capacity);
                            notInitialized = *(ulong*)mapping.Pointer == 0;
                        }
                    }
                    catch
                    {
                        mapping.Dispose();
                        throw;
                    }
                    if (problem == null) return mapping;
                    mapping.Dispose();
                    if (notInitialized && DateTime.UtcNow < giveUp) { Thread.Sleep(10); continue; }
                    throw SegmentStore.Corrupt(name, path, problem);
                }
            }
        }

        public void Remove(string name)
        {
            string path = PathOf(name);
            UnixSegmentDirectory.Check(name, mustExist: true);
            int errno = UnixFiles.Unlink(path);
            if (errno != 0) throw OpenError(name, path, errno);
        }

        public IReadOnlyList<string> ListNames()
        {
            var names = new List<string>();
            // A directory of another user is refused here too (it is not listed as if it were ours).
            string dir = UnixSegmentDirectory.Path;
            if (!UnixSegmentDirectory.Check(dir, mustExist: false)) return names;
            try
            {
                foreach (string file in Directory.GetFiles(dir))
                {
                    names.Add(Path.GetFileName(file));
                }
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new IpcException(IpcErrorKind.AccessDenied, $"Cannot list the shared memory directory {dir}: {e.Message}", dir, e);
            }
            names.Sort(StringComparer.Ordinal);
            return names;
        }

        public byte[]? ReadHeader(string name, out string? problem)
        {
            string path = PathOf(name);
            FileStream stream;
            using (SafeFd fd = UnixFiles.OpenExisting(path))
            {
                if (fd.IsInvalid)
                {
                    problem = OpenError(name, path, Libc.LastError).Message;
                    return null;
                }
                try
                {
                    CheckFile(name, path, fd);
                }
                catch (IpcException e)
                {
                    problem = e.Message;
                    return null;
                }
                stream = ToStream(fd, FileAccess.Read);
            }
            using (stream)
            {
                var header = new byte[SegmentHeader.Size];
                int got = 0;
                while (got < header.Length)
                {
                    int n = stream.Read(header, got, header.Length - got);
                    if (n == 0) break;
                    got += n;
                }
                long length = stream.Length;
                unsafe
                {
                    fixed (byte* b = header)
                    {
                        problem = got < header.Length
                            ? $"the file has {length} bytes, less than the {SegmentHeader.Size}-byte header"
                            : SegmentHeader.Validate(b, length, out _, out _);
                    }
                }
                return header;
            }
        }

        /// <summary>Hands an open descriptor to a FileStream, which owns it from then on (<paramref name="fd"/> is left empty).</summary>
        private static FileStream ToStream(SafeFd fd, FileAccess access)
        {
            SafeFileHandle file = fd.ToFileHandle();
            try
            {
                return new FileStream(file, access, 1);
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }

        /// <summary>A segment file must be a regular file of this user with mode 0600: never a file someone else made.</summary>
        private static void CheckFile(string name, string path, SafeFd fd)
        {
            if (!FileStatus.TryGet(fd, out FileStatus status)) throw OpenError(name, path, Libc.LastError);
            uint me = UnixNative.EffectiveUserId;
            if (!status.IsRegularFile)
            {
                throw new IpcException(IpcErrorKind.AccessDenied, $"{path} is not a regular file; PsIpc opens only segment files it created.", name);
            }
            if (status.Uid != me)
            {
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"The shared memory segment '{name}' ({path}) belongs to {UnixNative.DescribeUser(status.Uid)}, not to you (uid {me}); PsIpc opens only segments of its own user.", name);
            }
            if (status.Permissions != Libc.FileMode.OwnerOnly)
            {
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"The shared memory segment '{name}' ({path}) has mode {Convert.ToString(status.Permissions, 8)}; PsIpc creates segments with mode 600 and opens no other.", name);
            }
        }

        internal static IpcException OpenError(string name, string path, int errno)
        {
            if (errno == Libc.Errno.ENOENT)
            {
                return new IpcException(IpcErrorKind.SharedMemoryNotFound, $"No shared memory segment is named '{name}' ({path} does not exist).", name);
            }
            if (UnixFiles.IsSymlinkError(errno))
            {
                return new IpcException(IpcErrorKind.AccessDenied, $"{path} is a symbolic link; PsIpc never follows one.", name);
            }
            if (errno == Libc.Errno.EACCES || errno == Libc.Errno.EPERM)
            {
                return new IpcException(IpcErrorKind.AccessDenied, $"Permission denied on {path}.", name);
            }
            return new IpcException(IpcErrorKind.AccessDenied, $"Cannot open {path} (errno {errno}).", name);
        }
    }
}
