using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.SharedMemory;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>Names, files, header validation, segments and lock recovery, without PowerShell (queues: SharedMemoryQueueTests).</summary>
    [Collection(SharedMemoryCollection.Name)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class SharedMemoryTests : SharedMemoryTestBase
    {
        // ---- names, creation, opening ----

        [Theory]
        [InlineData("")]
        [InlineData(".hidden")]
        [InlineData("a/b")]
        [InlineData("..")]
        [InlineData("space name")]
        public void InvalidNamesAreRefused(string name)
        {
            Throws(IpcErrorKind.InvalidSharedMemoryName, () => SharedMemoryChannel.Create(name, 4096, false));
        }

        [Fact]
        public void CreatesA0600FileInA0700DirectoryOfTheUser()
        {
            string name = NewName();
            var seg = Track(SharedMemoryChannel.Create(name, 4096, false));
            Assert.Equal(SharedMemoryChannel.PathOf(name), seg.Address);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(seg.Address));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(seg.Address) ?? "/"));
            Assert.Equal(128 + 4096, new FileInfo(seg.Address).Length);
        }

        [Fact]
        public void CreatingATakenNameFailsAndOpeningAMissingOneFails()
        {
            string name = NewName();
            Track(SharedMemoryChannel.Create(name, 4096, false));
            Throws(IpcErrorKind.SharedMemoryNameInUse, () => SharedMemoryChannel.Create(name, 4096, true));
            Throws(IpcErrorKind.SharedMemoryNotFound, () => SharedMemoryChannel.Open(NewName()));
        }

        [Theory]
        [InlineData(0L)]
        [InlineData(63L)]
        [InlineData((1L << 40) + 1)]
        public void SizesOutOfRangeAreRefused(long size)
        {
            Throws(IpcErrorKind.SharedMemoryTooLarge, () => SharedMemoryChannel.Create(NewName(), size, false));
        }

        [Fact]
        public void OpenFindsTheKindFromTheHeader()
        {
            string q = NewName(), s = NewName();
            Track(SharedMemoryChannel.Create(q, 1000, true));
            Track(SharedMemoryChannel.Create(s, 1000, false));
            var queue = Track(SharedMemoryChannel.Open(q));
            var segment = Track(SharedMemoryChannel.Open(s));
            Assert.IsType<SharedMemoryQueue>(queue);
            Assert.Equal(1000, queue.Capacity); // already a multiple of 8
            Assert.IsType<SharedMemorySegment>(segment);
            Assert.Equal(ChannelRole.Client, segment.Role);
        }

        [Fact]
        public void RefusesAFileWithAnotherModeASymlinkOrAnotherOwner()
        {
            string name = NewName();
            var seg = Track(SharedMemoryChannel.Create(name, 4096, false));
            File.SetUnixFileMode(seg.Address, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            Assert.Contains("mode 644", Throws(IpcErrorKind.AccessDenied, () => SharedMemoryChannel.Open(name)).Message);
            File.SetUnixFileMode(seg.Address, UnixFileMode.UserRead | UnixFileMode.UserWrite);

            string link = NewName();
            File.CreateSymbolicLink(SharedMemoryChannel.PathOf(link), seg.Address);
            Assert.Contains("symbolic link", Throws(IpcErrorKind.AccessDenied, () => SharedMemoryChannel.Open(link)).Message);
            Throws(IpcErrorKind.SharedMemoryNameInUse, () => SharedMemoryChannel.Create(link, 4096, false)); // O_EXCL: never through a link

            if (PsIpc.Transport.Platform.UnixNative.EffectiveUserId == 0)
            {
                // Root can hand the file to another user: a segment "created by someone else".
                Assert.Equal(0, chown(seg.Address, 65534, 65534));
                Assert.Contains("belongs to uid 65534", Throws(IpcErrorKind.AccessDenied, () => SharedMemoryChannel.Open(name)).Message);
            }
        }

        [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
        private static extern int chown(string path, int uid, int gid);

        // ---- header validation: a corrupt or foreign file is a clear error, never an out-of-bounds access ----

        [Fact]
        public void AHandWrittenValidHeaderOpens()
        {
            string name = WriteRawSegment(ValidHeader(256));
            var seg = Track(SharedMemoryChannel.Open(name));
            Assert.Equal(256, seg.Capacity);
        }

        public static IEnumerable<object[]> CorruptFiles()
        {
            yield return new object[] { "empty", Array.Empty<byte>(), "less than the 128-byte header" };
            yield return new object[] { "short", new byte[100], "less than the 128-byte header" };
            byte[] foreign = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
            yield return new object[] { "foreign", foreign, "magic" };
            byte[] version = ValidHeader(256); BitConverter.GetBytes(3).CopyTo(version, 8);
            yield return new object[] { "version", version, "version is 3" };
            byte[] kind = ValidHeader(256); BitConverter.GetBytes(9).CopyTo(kind, 16);
            yield return new object[] { "kind", kind, "kind 9" };
            byte[] huge = ValidHeader(256); BitConverter.GetBytes(1L << 50).CopyTo(huge, 24);
            yield return new object[] { "capacity", huge, "out of range" };
            byte[] total = ValidHeader(256); BitConverter.GetBytes(100000L).CopyTo(total, 32);
            yield return new object[] { "total", total, "total size" };
            byte[] truncated = ValidHeader(256).Take(300).ToArray();
            yield return new object[] { "truncated", truncated, "the file has 300" };
            byte[] oddQueue = ValidHeader(257, kind: 2);
            yield return new object[] { "odd queue", oddQueue, "multiple of 8" };
        }

        [Theory]
        [MemberData(nameof(CorruptFiles))]
        public void ACorruptOrForeignFileIsAClearError(string what, byte[] content, string reason)
        {
            string name = WriteRawSegment(content);
            var e = Throws(IpcErrorKind.SharedMemoryCorrupt, () => SharedMemoryChannel.Open(name));
            Assert.True(e.Message.Contains(reason), $"{what}: {e.Message}");
        }

        [Fact]
        public void ACorruptValueHeaderOrRingIsAClearError()
        {
            byte[] seg = ValidHeader(256);
            BitConverter.GetBytes(0x10).CopyTo(seg, 72);      // Text
            BitConverter.GetBytes(100000L).CopyTo(seg, 80);   // longer than the segment
            var segment = (SharedMemorySegment)Track(SharedMemoryChannel.Open(WriteRawSegment(seg)));
            Throws(IpcErrorKind.SharedMemoryCorrupt, () => segment.ReadValue(Deadline.Infinite, CancellationToken.None));

            byte[] q = ValidHeader(256, kind: 2);
            BitConverter.GetBytes(0L).CopyTo(q, 64);    // head
            BitConverter.GetBytes(16L).CopyTo(q, 72);   // tail: one 16-byte record
            BitConverter.GetBytes(5000u).CopyTo(q, 128); // whose length claims 5000 bytes
            q[132] = 0x10;
            var queue = Track(SharedMemoryChannel.Open(WriteRawSegment(q)));
            Throws(IpcErrorKind.SharedMemoryCorrupt, () => queue.Receive(new List<IpcMessage>(), 10, Deadline.Infinite, CancellationToken.None));

            byte[] q2 = ValidHeader(256, kind: 2);
            BitConverter.GetBytes(0L).CopyTo(q2, 64);
            BitConverter.GetBytes(1024L).CopyTo(q2, 72); // more queued than the ring holds
            var queue2 = Track(SharedMemoryChannel.Open(WriteRawSegment(q2)));
            Throws(IpcErrorKind.SharedMemoryCorrupt, () => queue2.Send(MessageFormat.Text, Bytes(3, 1), Deadline.Infinite, CancellationToken.None));
        }

        // ---- segments ----

        [Fact]
        public void AValueAndBytesAtAnOffsetRoundTripBetweenTwoMappings()
        {
            string name = NewName();
            var writer = (SharedMemorySegment)Track(SharedMemoryChannel.Create(name, 4096, false));
            var reader = (SharedMemorySegment)Track(SharedMemoryChannel.Open(name));
            Assert.Null(reader.ReadValue(Deadline.Infinite, CancellationToken.None));

            writer.WriteValue(MessageFormat.Text, Wire.Text("héllo"), Deadline.Infinite, CancellationToken.None);
            IpcMessage value = ValueOf(reader, Deadline.Infinite);
            Assert.Equal(Wire.Text("héllo"), value.Payload);
            Assert.Equal(MessageFormat.Text, value.Format);
            Assert.Same(reader, value.Sender);

            writer.WriteBytes(4090, new byte[] { 1, 2, 3, 4, 5, 6 }, Deadline.Infinite, CancellationToken.None);
            Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6 }, reader.ReadBytes(4090, 6, Deadline.Infinite, CancellationToken.None));
            Assert.Empty(reader.ReadBytes(4096, 0, Deadline.Infinite, CancellationToken.None));

            writer.WriteValue(MessageFormat.Bytes, Bytes(4096, 3), Deadline.Infinite, CancellationToken.None); // exactly the capacity
            Assert.Equal(Bytes(4096, 3), ValueOf(reader, Deadline.Infinite).Payload);
            Assert.Equal(3, reader.WriteCount);
        }

        [Fact]
        public void WritesAndReadsBeyondTheSegmentAreRefused()
        {
            var seg = (SharedMemorySegment)Track(SharedMemoryChannel.Create(NewName(), 4096, false));
            Throws(IpcErrorKind.SharedMemoryTooLarge, () => seg.WriteValue(MessageFormat.Bytes, new byte[4097], Deadline.Infinite, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryTooLarge, () => seg.WriteBytes(4090, new byte[7], Deadline.Infinite, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryTooLarge, () => seg.WriteBytes(-1, new byte[1], Deadline.Infinite, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryTooLarge, () => seg.ReadBytes(0, 4097, Deadline.Infinite, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryTooLarge, () => seg.ReadBytes(long.MaxValue, 1, Deadline.Infinite, CancellationToken.None));
        }

        [Fact]
        public void ASegmentIsNotAQueue()
        {
            var seg = Track(SharedMemoryChannel.Create(NewName(), 4096, false));
            Throws(IpcErrorKind.SharedMemoryNotQueue, () => seg.Send(MessageFormat.Text, Wire.Text("x"), Deadline.Infinite, CancellationToken.None));
            Throws(IpcErrorKind.SharedMemoryNotQueue, () => seg.Receive(new List<IpcMessage>(), 1, Deadline.Infinite, CancellationToken.None));
        }

        // ---- the lock ----

        private static int DeadPid()
        {
            using (Process? p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false }))
            {
                Assert.NotNull(p);
                p.WaitForExit();
                return p.Id;
            }
        }

        private static void SetLockHolder(string path, int pid, bool midWrite)
        {
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
            {
                fs.Position = 40;
                fs.Write(BitConverter.GetBytes(pid), 0, 4);
                if (midWrite)
                {
                    fs.Position = 64;
                    var seq = new byte[8];
                    fs.ReadExactly(seq, 0, 8);
                    fs.Position = 64;
                    fs.Write(BitConverter.GetBytes(BitConverter.ToInt64(seq, 0) | 1), 0, 8);
                }
            }
        }

        [Fact]
        public void ALockHeldByALiveProcessTimesOut()
        {
            var seg = (SharedMemorySegment)Track(SharedMemoryChannel.Create(NewName(), 4096, false));
            SetLockHolder(seg.Address, 1, midWrite: false); // pid 1 is alive
            var sw = Stopwatch.StartNew();
            var e = Throws(IpcErrorKind.SharedMemoryLockTimeout, () => seg.ReadValue(Deadline.After(TimeSpan.FromMilliseconds(200)), CancellationToken.None));
            Assert.True(e.IsTimeout);
            Assert.Contains("held by process 1", e.Message);
            Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(150), sw.Elapsed.ToString());
            Assert.Throws<OperationCanceledException>(() => seg.ReadValue(Deadline.Infinite, new CancellationTokenSource(100).Token));
            SetLockHolder(seg.Address, 0, midWrite: false);
        }

        [Fact]
        public void ALockOfADeadHolderIsTakenOverAndAHalfWriteIsReported()
        {
            string name = NewName();
            var seg = (SharedMemorySegment)Track(SharedMemoryChannel.Create(name, 4096, false));
            seg.WriteValue(MessageFormat.Text, Wire.Text("before"), Deadline.Infinite, CancellationToken.None);

            SetLockHolder(seg.Address, DeadPid(), midWrite: false);
            Assert.Equal(Wire.Text("before"), ValueOf(seg, Deadline.After(Wire.Patience)).Payload);
            Assert.Equal(1, seg.LockRecoveries);
            Assert.False(seg.IsDamaged);

            SetLockHolder(seg.Address, DeadPid(), midWrite: true);
            Throws(IpcErrorKind.SharedMemoryDamaged, () => seg.ReadValue(Deadline.After(Wire.Patience), CancellationToken.None));
            Assert.True(seg.IsDamaged);
            Assert.Equal(2, seg.LockRecoveries);
            Assert.Equal(6, seg.ReadBytes(0, 6, Deadline.Infinite, CancellationToken.None).Length); // bytes stay readable
            seg.WriteValue(MessageFormat.Text, Wire.Text("after"), Deadline.Infinite, CancellationToken.None);
            Assert.False(seg.IsDamaged);
            Assert.Equal(Wire.Text("after"), ValueOf(seg, Deadline.Infinite).Payload);
        }
    }
}
