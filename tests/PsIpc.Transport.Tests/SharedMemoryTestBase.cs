using System;
using System.Collections.Generic;
using System.IO;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.SharedMemory;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// What the shared memory test classes share: names of this run (removed afterwards), channels closed at the
    /// end, and raw access to a segment's file for tests that play a hostile or broken process.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public abstract class SharedMemoryTestBase : IDisposable
    {
        private readonly List<string> _names = new List<string>();
        private readonly List<IpcChannel> _open = new List<IpcChannel>();

        protected string NewName()
        {
            string name = "xt-" + Guid.NewGuid().ToString("N").Substring(0, 12);
            _names.Add(name);
            return name;
        }

        protected T Track<T>(T channel) where T : IpcChannel
        {
            _open.Add(channel);
            return channel;
        }

        public virtual void Dispose()
        {
            foreach (IpcChannel c in _open) c.Close(Deadline.After(TimeSpan.FromSeconds(1)));
            foreach (string name in _names)
            {
                try { SharedMemoryChannel.Remove(name); } catch (IpcException) { }
            }
        }

        protected static IpcException Throws(IpcErrorKind kind, Action action)
        {
            var e = Assert.Throws<IpcException>(action);
            Assert.Equal(kind, e.Kind);
            return e;
        }

        protected static byte[] Bytes(int length, int seed)
        {
            var b = new byte[length];
            for (int i = 0; i < length; i++) b[i] = (byte)(seed + i * 7);
            return b;
        }

        /// <summary>The latest value of a segment, which the test expects to be there.</summary>
        protected static IpcMessage ValueOf(SharedMemorySegment segment, Deadline deadline)
        {
            IpcMessage? value = segment.ReadValue(deadline, System.Threading.CancellationToken.None);
            Assert.NotNull(value);
            return value;
        }

        /// <summary>Cuts a segment's file to <paramref name="length"/> bytes through a descriptor of its own, as another process would.</summary>
        protected static void Truncate(string path, long length)
        {
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
            {
                fs.SetLength(length);
            }
        }

        /// <summary>Overwrites bytes of a segment's file (its header, for crafted values) through a descriptor of its own.</summary>
        protected static void Poke(string path, long offset, byte[] bytes)
        {
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
            {
                fs.Position = offset;
                fs.Write(bytes, 0, bytes.Length);
            }
        }

        /// <summary>A 32-bit word of a segment's file, read through a descriptor of its own (not through a mapping).</summary>
        protected static int PeekInt32(string path, long offset)
        {
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            {
                var word = new byte[4];
                fs.Position = offset;
                fs.ReadExactly(word, 0, 4);
                return BitConverter.ToInt32(word, 0);
            }
        }

        /// <summary>Waits until the header word at <paramref name="offset"/> (a count of sleepers) is <paramref name="value"/>.</summary>
        protected static void WaitForWord(string path, long offset, int value)
        {
            Assert.True(System.Threading.SpinWait.SpinUntil(() => PeekInt32(path, offset) == value, Wire.Patience),
                $"the word at {offset} of {path} never became {value}");
        }

        /// <summary>A complete header of a segment (kind 1) or queue (kind 2) of <paramref name="capacity"/> bytes, followed by zeroed data.</summary>
        protected static byte[] ValidHeader(long capacity, int kind = 1)
        {
            var b = new byte[128 + capacity];
            BitConverter.GetBytes(0x4D48534350495350UL).CopyTo(b, 0);
            BitConverter.GetBytes(2).CopyTo(b, 8);
            BitConverter.GetBytes(128).CopyTo(b, 12);
            BitConverter.GetBytes(kind).CopyTo(b, 16);
            BitConverter.GetBytes(capacity).CopyTo(b, 24);
            BitConverter.GetBytes(128 + capacity).CopyTo(b, 32);
            return b;
        }

        /// <summary>Writes <paramref name="content"/> as the file of a new name (mode 0600, in the user's directory).</summary>
        protected string WriteRawSegment(byte[] content)
        {
            string name = NewName();
            Track(SharedMemoryChannel.Create(name, 64, false)).Close(Deadline.Infinite); // makes the directory
            string path = SharedMemoryChannel.PathOf(name);
            File.WriteAllBytes(path, content);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return name;
        }
    }
}
