using System.Collections.Generic;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.SharedMemory
{
    /// <summary>
    /// Where segments live and how they are created, opened, removed and listed: files under a directory of the
    /// user's own on Linux and macOS (<see cref="UnixSegmentStore"/>), named maps on Windows
    /// (<see cref="WindowsSegmentStore"/>). Names reach a store already validated.
    /// </summary>
    internal interface ISegmentStore
    {
        /// <summary>The file path (Unix) or map name (Windows) of a name.</summary>
        string PathOf(string name);

        /// <summary>Creates a new segment of header + <paramref name="capacity"/> bytes with an initialized header.</summary>
        SharedMapping Create(string name, SharedMemoryKind kind, long capacity);

        /// <summary>Opens an existing segment and checks its header.</summary>
        SharedMapping Open(string name, out SharedMemoryKind kind, out long capacity);

        /// <summary>Deletes the name. Processes that have the segment open keep using it until they close it.</summary>
        void Remove(string name);

        /// <summary>The names of this user's segments, in ordinal order.</summary>
        IReadOnlyList<string> ListNames();

        /// <summary>The header of a segment read without mapping it (for listing); null, with the reason, when it cannot be read.</summary>
        byte[]? ReadHeader(string name, out string? problem);
    }

    /// <summary>The store of this platform, chosen once, behind the name checks every store needs.</summary>
    internal static class SegmentStore
    {
        private static readonly ISegmentStore s_store = UnixNative.IsWindows ? (ISegmentStore)new WindowsSegmentStore() : new UnixSegmentStore();

        public static string PathOf(string name) => s_store.PathOf(name);

        public static SharedMapping Create(string name, SharedMemoryKind kind, long capacity)
        {
            SharedMemoryName.Validate(name);
            return s_store.Create(name, kind, capacity);
        }

        public static SharedMapping Open(string name, out SharedMemoryKind kind, out long capacity)
        {
            SharedMemoryName.Validate(name);
            return s_store.Open(name, out kind, out capacity);
        }

        public static void Remove(string name)
        {
            SharedMemoryName.Validate(name);
            s_store.Remove(name);
        }

        public static IReadOnlyList<string> ListNames() => s_store.ListNames();

        public static byte[]? ReadHeader(string name, out string? problem) => s_store.ReadHeader(name, out problem);

        public static IpcException Corrupt(string name, string path, string problem) =>
            new IpcException(IpcErrorKind.SharedMemoryCorrupt, $"'{name}' ({path}) is not a usable PsIpc segment: {problem}.", name);
    }
}
