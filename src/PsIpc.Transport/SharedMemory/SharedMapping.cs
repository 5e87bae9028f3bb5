using System;
using System.IO;
using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// A segment mapped into this process: a pointer to its first byte and its length. On Unix it also keeps the
    /// file's descriptor, because a file can shrink under its mapping: another process of the user may truncate
    /// it, and touching a mapped page beyond the file's new end raises SIGBUS, which .NET cannot catch (the whole
    /// process dies). <see cref="EnsureIntact"/> asks the kernel for the file's size before the mapping is used.
    /// </summary>
    internal sealed unsafe class SharedMapping : IDisposable
    {
        private readonly MemoryMappedFile _file;
        private readonly MemoryMappedViewAccessor _view;
        private readonly SafeFileHandle? _descriptor; // null for a Windows named map, which cannot shrink
        private bool _disposed;

        public SharedMapping(MemoryMappedFile file, long length, string name, string address, SafeFileHandle? descriptor = null)
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
            Name = name;
            Address = address;
            _descriptor = descriptor;
        }

        public byte* Pointer { get; }

        public long Length { get; }

        public string Name { get; }

        /// <summary>The file path (Unix) or the map name (Windows).</summary>
        public string Address { get; }

        /// <summary>
        /// Null while the file still covers every mapped byte; else the error to report. One system call (statx).
        /// </summary>
        public IpcException? Shrunk()
        {
            if (_descriptor == null) return null;
            bool measured;
            FileStatus status;
            try
            {
                measured = FileStatus.TryGet(_descriptor, out status);
            }
            catch (ObjectDisposedException)
            {
                return null; // unmapped meanwhile: the caller's use count or closed check reports that
            }
            if (measured && status.Size >= Length) return null;
            string now = measured ? $"is {status.Size} bytes now" : $"cannot be measured (errno {Libc.LastError})";
            return new IpcException(IpcErrorKind.SharedMemoryTruncated,
                $"The shared memory file of '{Name}' ({Address}) {now}, less than the {Length} bytes mapped: another process truncated it. " +
                "Nothing was read or written. Close it (Close-IpcChannel) and remove it (Remove-SharedMemory).", Name);
        }

        /// <summary>True while the file still covers every mapped byte.</summary>
        public bool IsIntact => Shrunk() == null;

        /// <summary>Throws SharedMemoryTruncated when the file no longer covers the mapping; call before touching it.</summary>
        public void EnsureIntact()
        {
            IpcException? shrunk = Shrunk();
            if (shrunk != null) throw shrunk;
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file.Dispose();
        }

        /// <summary>Maps the whole of an open file read-write; the mapping owns the stream from then on, also when this throws.</summary>
        public static SharedMapping FromFile(FileStream stream, long length, string name, string address)
        {
            SafeFileHandle descriptor = stream.SafeFileHandle;
            MemoryMappedFile file;
            try
            {
                file = MemoryMappedFile.CreateFromFile(stream, null, length, MemoryMappedFileAccess.ReadWrite,
                    HandleInheritability.None, leaveOpen: false);
            }
            catch
            {
                stream.Dispose();
                throw;
            }
            return new SharedMapping(file, length, name, address, descriptor); // disposes the file (and stream) if it throws
        }
    }
}
