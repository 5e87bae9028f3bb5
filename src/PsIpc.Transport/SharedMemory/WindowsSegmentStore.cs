using System;
using System.Collections.Generic;
using System.IO;
using System.IO.MemoryMappedFiles;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// Windows: a named map in the session's namespace (Local\psipc-&lt;name&gt;). UNTESTED here (no Windows machine).
    /// Unlike a file, a named map exists only while some process has it open, so a segment does not outlive the
    /// last process that uses it, and only the segments this process opened can be listed.
    /// </summary>
    internal sealed class WindowsSegmentStore : ISegmentStore
    {
        private readonly object _gate = new object();
        private readonly List<string> _known = new List<string>();

        private static string MapName(string name) => @"Local\psipc-" + name;

        public string PathOf(string name) => MapName(name);

        public SharedMapping Create(string name, SharedMemoryKind kind, long capacity)
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

        public SharedMapping Open(string name, out SharedMemoryKind kind, out long capacity)
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
            string? problem;
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

        public void Remove(string name)
        {
            lock (_gate) _known.Remove(name);
        }

        public IReadOnlyList<string> ListNames()
        {
            lock (_gate) return _known.ToArray();
        }

        public byte[]? ReadHeader(string name, out string? problem)
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

        private void Remember(string name)
        {
            lock (_gate)
            {
                if (!_known.Contains(name)) _known.Add(name);
            }
        }
    }
}
