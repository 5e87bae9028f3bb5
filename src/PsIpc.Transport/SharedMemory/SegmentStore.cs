using System;
using System.Collections.Generic;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Threading;
using Microsoft.Win32.SafeHandles;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// Where segments live and how they are created, opened, removed and listed. Linux and macOS: a file per
    /// segment in a directory of the user's own, mode 0700 (/dev/shm/psipc-&lt;uid&gt; on Linux, $TMPDIR/psipc-&lt;uid&gt;
    /// on macOS), each file created with O_EXCL|O_NOFOLLOW and mode 0600 and mapped with
    /// MemoryMappedFile.CreateFromFile (.NET's named maps throw on Unix). Windows: see <see cref="WindowsSegments"/>.
    /// </summary>
    internal static class SegmentStore
    {
        public static string PathOf(string name) => ShmNative.IsWindows ? WindowsSegments.MapName(name) : Path.Combine(SegmentDirectory.Path, name);

        /// <summary>Creates a new segment file of header + <paramref name="capacity"/> bytes with an initialized header.</summary>
        public static SharedMapping Create(string name, SharedMemoryKind kind, long capacity)
        {
            SharedMemoryName.Validate(name);
            if (ShmNative.IsWindows) return WindowsSegments.Create(name, kind, capacity);
            string path = PathOf(name);
            SegmentDirectory.Ensure(name);
            int fd = ShmNative.CreateExclusive(path);
            if (fd < 0)
            {
                int errno = ShmNative.LastError;
                if (errno == ShmNative.EEXIST)
                {
                    throw new IpcException(IpcErrorKind.SharedMemoryNameInUse,
                        $"A shared memory segment named '{name}' exists already ({path}). Open it with New-SharedMemory -Name {name} -Open, or remove it with Remove-SharedMemory.", name);
                }
                throw OpenError(name, path, errno);
            }
            long total = SegmentHeader.Size + capacity;
            SharedMapping mapping = null;
            try
            {
                var stream = new FileStream(new SafeFileHandle((IntPtr)fd, ownsHandle: true), FileAccess.ReadWrite, 1);
                fd = -1;
                try
                {
                    stream.SetLength(total);
                    // SetLength alone makes a sparse file: a later write into a page tmpfs cannot supply
                    // kills the process with SIGBUS. Reserve every page now, and fail here instead.
                    int reserveError = ShmNative.Reserve(stream.SafeFileHandle, total);
                    if (reserveError != 0)
                    {
                        throw new IOException($"{(reserveError == ShmNative.ENOSPC ? "not enough free space in /dev/shm" : "errno " + reserveError)}");
                    }
                }
                catch (IOException e)
                {
                    stream.Dispose();
                    throw new IpcException(IpcErrorKind.SharedMemoryTooLarge,
                        $"Cannot make the segment '{name}' {total} bytes: {e.Message}", name, e);
                }
                try
                {
                    mapping = SharedMapping.FromFile(stream, total, name, path);
                }
                catch
                {
                    stream.Dispose();
                    throw;
                }
                mapping.EnsureIntact(); // another process may have truncated the new file already
                unsafe { SegmentHeader.Initialize(mapping.Pointer, kind, capacity); }
                return mapping;
            }
            catch
            {
                if (fd >= 0) ShmNative.Close(fd);
                mapping?.Dispose();
                ShmNative.Unlink(path);
                throw;
            }
        }

        /// <summary>Opens an existing segment and checks its header.</summary>
        public static SharedMapping Open(string name, out SharedMemoryKind kind, out long capacity)
        {
            SharedMemoryName.Validate(name);
            if (ShmNative.IsWindows) return WindowsSegments.Open(name, out kind, out capacity);
            string path = PathOf(name);
            SegmentDirectory.Check(name, mustExist: true);
            // A creator maps and initializes right after O_EXCL: wait a moment for a header that is not written yet.
            DateTime giveUp = DateTime.UtcNow.AddSeconds(2);
            while (true)
            {
                int fd = ShmNative.OpenExisting(path);
                if (fd < 0) throw OpenError(name, path, ShmNative.LastError);
                SharedMapping mapping = null;
                try
                {
                    CheckFile(name, path, fd);
                    var stream = new FileStream(new SafeFileHandle((IntPtr)fd, ownsHandle: true), FileAccess.ReadWrite, 1);
                    fd = -1;
                    long length = stream.Length;
                    if (length < SegmentHeader.Size)
                    {
                        stream.Dispose();
                        if (DateTime.UtcNow < giveUp) { Thread.Sleep(10); continue; }
                        throw Corrupt(name, path, $"the file has {length} bytes, less than the {SegmentHeader.Size}-byte header");
                    }
                    mapping = SharedMapping.FromFile(stream, length, name, path);
                    mapping.EnsureIntact(); // the file may have shrunk since its length was read
                    string problem;
                    unsafe { problem = SegmentHeader.Validate(mapping.Pointer, length, out kind, out capacity); }
                    if (problem == null) return mapping;
                    bool notInitialized;
                    unsafe { notInitialized = *(ulong*)mapping.Pointer == 0; }
                    mapping.Dispose();
                    mapping = null;
                    if (notInitialized && DateTime.UtcNow < giveUp) { Thread.Sleep(10); continue; }
                    throw Corrupt(name, path, problem);
                }
                catch
                {
                    if (fd >= 0) ShmNative.Close(fd);
                    mapping?.Dispose();
                    throw;
                }
            }
        }

        /// <summary>Deletes the name. Processes that have the segment open keep using it until they close it.</summary>
        public static void Remove(string name)
        {
            SharedMemoryName.Validate(name);
            if (ShmNative.IsWindows)
            {
                WindowsSegments.Remove(name);
                return;
            }
            string path = PathOf(name);
            SegmentDirectory.Check(name, mustExist: true);
            int errno = ShmNative.Unlink(path);
            if (errno != 0) throw OpenError(name, path, errno);
        }

        /// <summary>The names of this user's segments (files in the directory; Windows: those open in this process).</summary>
        public static IReadOnlyList<string> ListNames()
        {
            if (ShmNative.IsWindows) return WindowsSegments.ListNames();
            var names = new List<string>();
            // A directory of another user is refused here too (it is not listed as if it were ours).
            string dir = SegmentDirectory.Path;
            if (!SegmentDirectory.Check(dir, mustExist: false)) return names;
            try
            {
                foreach (string file in System.IO.Directory.GetFiles(dir))
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

        /// <summary>Reads the header of a segment without mapping it, for listing. Null when it cannot be read.</summary>
        public static byte[] ReadHeader(string name, out string problem)
        {
            problem = null;
            if (ShmNative.IsWindows) return WindowsSegments.ReadHeader(name, out problem);
            string path = PathOf(name);
            int fd = ShmNative.OpenExisting(path);
            if (fd < 0)
            {
                problem = OpenError(name, path, ShmNative.LastError).Message;
                return null;
            }
            try
            {
                CheckFile(name, path, fd);
            }
            catch (IpcException e)
            {
                ShmNative.Close(fd);
                problem = e.Message;
                return null;
            }
            using (var stream = new FileStream(new SafeFileHandle((IntPtr)fd, ownsHandle: true), FileAccess.Read, 1))
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

        /// <summary>A segment file must be a regular file of this user with mode 0600: never a file someone else made.</summary>
        private static void CheckFile(string name, string path, int fd)
        {
            if (!ShmNative.TryGetOwnerAndMode(fd, out uint uid, out uint mode)) throw OpenError(name, path, ShmNative.LastError);
            uint me = ShmNative.EffectiveUserId;
            if ((mode & ShmNative.S_IFMT) != ShmNative.S_IFREG)
            {
                throw new IpcException(IpcErrorKind.AccessDenied, $"{path} is not a regular file; PsIpc opens only segment files it created.", name);
            }
            if (uid != me)
            {
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"The shared memory segment '{name}' ({path}) belongs to {ShmNative.DescribeUser(uid)}, not to you ({ShmNative.DescribeUser(me)}); PsIpc opens only segments of its own user.", name);
            }
            if ((mode & 0xFFF) != 0x180)
            {
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"The shared memory segment '{name}' ({path}) has mode {Convert.ToString(mode & 0xFFF, 8)}; PsIpc creates segments with mode 600 and opens no other.", name);
            }
        }

        internal static IpcException OpenError(string name, string path, int errno)
        {
            if (errno == ShmNative.ENOENT)
            {
                return new IpcException(IpcErrorKind.SharedMemoryNotFound, $"No shared memory segment is named '{name}' ({path} does not exist).", name);
            }
            if (ShmNative.IsSymlinkError(errno))
            {
                return new IpcException(IpcErrorKind.AccessDenied, $"{path} is a symbolic link; PsIpc never follows one.", name);
            }
            if (errno == ShmNative.EACCES || errno == ShmNative.EPERM)
            {
                return new IpcException(IpcErrorKind.AccessDenied, $"Permission denied on {path}.", name);
            }
            return new IpcException(IpcErrorKind.AccessDenied, $"Cannot open {path} (errno {errno}).", name);
        }

        internal static IpcException Corrupt(string name, string path, string problem) =>
            new IpcException(IpcErrorKind.SharedMemoryCorrupt, $"'{name}' ({path}) is not a usable PsIpc segment: {problem}.", name);
    }

    /// <summary>
    /// Windows: a named map in the session's namespace (Local\psipc-&lt;name&gt;). UNTESTED here (no Windows machine).
    /// Unlike a file, a named map exists only while some process has it open, so a segment does not outlive the
    /// last process that uses it, and only the segments this process opened can be listed.
    /// </summary>
    internal static class WindowsSegments
    {
        private static readonly object s_gate = new object();
        private static readonly List<string> s_known = new List<string>();

        public static string MapName(string name) => @"Local\psipc-" + name;

        public static SharedMapping Create(string name, SharedMemoryKind kind, long capacity)
        {
            long total = SegmentHeader.Size + capacity;
            MemoryMappedFile file;
            try
            {
                file = MemoryMappedFile.CreateNew(MapName(name), total, MemoryMappedFileAccess.ReadWrite);
            }
            catch (IOException e)
            {
                throw new IpcException(IpcErrorKind.SharedMemoryNameInUse, $"A shared memory segment named '{name}' exists already.", name, e);
            }
            var mapping = new SharedMapping(file, total, name, MapName(name));
            unsafe { SegmentHeader.Initialize(mapping.Pointer, kind, capacity); }
            Remember(name);
            return mapping;
        }

        public static SharedMapping Open(string name, out SharedMemoryKind kind, out long capacity)
        {
            MemoryMappedFile file;
            try
            {
                file = MemoryMappedFile.OpenExisting(MapName(name), MemoryMappedFileRights.ReadWrite);
            }
            catch (FileNotFoundException e)
            {
                throw new IpcException(IpcErrorKind.SharedMemoryNotFound, $"No shared memory segment is named '{name}'.", name, e);
            }
            catch (UnauthorizedAccessException e)
            {
                throw new IpcException(IpcErrorKind.AccessDenied, $"Access to the shared memory segment '{name}' is denied.", name, e);
            }
            var mapping = new SharedMapping(file, 0, name, MapName(name));
            string problem;
            unsafe
            {
                // The view is whole pages: the header's total size must fit in it.
                long total = *(long*)(mapping.Pointer + SegmentHeader.TotalSizeOffset);
                long length = total > 0 && total <= mapping.Length ? total : mapping.Length;
                problem = SegmentHeader.Validate(mapping.Pointer, length, out kind, out capacity);
            }
            if (problem != null)
            {
                mapping.Dispose();
                throw SegmentStore.Corrupt(name, MapName(name), problem);
            }
            Remember(name);
            return mapping;
        }

        public static void Remove(string name)
        {
            lock (s_gate) s_known.Remove(name);
        }

        public static IReadOnlyList<string> ListNames()
        {
            lock (s_gate) return s_known.ToArray();
        }

        public static byte[] ReadHeader(string name, out string problem)
        {
            problem = null;
            try
            {
                using (MemoryMappedFile file = MemoryMappedFile.OpenExisting(MapName(name), MemoryMappedFileRights.Read))
                using (MemoryMappedViewAccessor view = file.CreateViewAccessor(0, SegmentHeader.Size, MemoryMappedFileAccess.Read))
                {
                    var header = new byte[SegmentHeader.Size];
                    view.ReadArray(0, header, 0, header.Length);
                    return header;
                }
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                problem = e.Message;
                return null;
            }
        }

        private static void Remember(string name)
        {
            lock (s_gate)
            {
                if (!s_known.Contains(name)) s_known.Add(name);
            }
        }
    }
}
