using System;
using System.IO;
using System.IO.MemoryMappedFiles;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>A segment mapped into this process: a pointer to its first byte and its length.</summary>
    internal sealed unsafe class SharedMapping : IDisposable
    {
        private readonly MemoryMappedFile _file;
        private readonly MemoryMappedViewAccessor _view;
        private bool _disposed;

        public SharedMapping(MemoryMappedFile file, long length, string address)
        {
            _file = file;
            try
            {
                _view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.ReadWrite);
                byte* p = null;
                _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
                Pointer = p + _view.PointerOffset;
                // On Windows a view is rounded up to whole pages; the bytes that count are the file's.
                Length = length > 0 ? length : (long)_view.SafeMemoryMappedViewHandle.ByteLength - _view.PointerOffset;
            }
            catch
            {
                _view?.Dispose();
                file.Dispose();
                throw;
            }
            Address = address;
        }

        public byte* Pointer { get; }

        public long Length { get; }

        /// <summary>The file path (Unix) or the map name (Windows).</summary>
        public string Address { get; }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file.Dispose();
        }

        /// <summary>Maps the whole of an open file read-write; the mapping keeps the file open.</summary>
        public static SharedMapping FromFile(FileStream stream, long length, string address)
        {
            MemoryMappedFile file = MemoryMappedFile.CreateFromFile(stream, null, length, MemoryMappedFileAccess.ReadWrite,
                HandleInheritability.None, leaveOpen: false);
            return new SharedMapping(file, length, address);
        }
    }
}
