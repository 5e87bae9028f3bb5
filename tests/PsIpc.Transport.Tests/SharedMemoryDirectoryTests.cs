using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using PsIpc.Transport;
using PsIpc.Transport.SharedMemory;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// The shared memory tests run one class at a time: this class changes PSIPC_SHM_DIR, which every segment
    /// operation of the process reads.
    /// </summary>
    [CollectionDefinition(Name)]
    public sealed class SharedMemoryCollection
    {
        public const string Name = "SharedMemory";
    }

    /// <summary>
    /// The per-user directory of segment files: PSIPC_SHM_DIR chooses it, and one that another user created first
    /// (the default name is predictable, and /dev/shm is writable by everyone) is refused with an error that names
    /// that user and the way out.
    /// </summary>
    [Collection(SharedMemoryCollection.Name)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class SharedMemoryDirectoryTests : SharedMemoryTestBase
    {
        private const string Variable = "PSIPC_SHM_DIR";
        private const uint Nobody = 65534;
        private readonly string _base = Path.Combine(Path.GetTempPath(), "psipc-dirtest-" + Guid.NewGuid().ToString("N").Substring(0, 12));

        public SharedMemoryDirectoryTests()
        {
            Directory.CreateDirectory(_base);
        }

        public override void Dispose()
        {
            Environment.SetEnvironmentVariable(Variable, null);
            base.Dispose();
            Directory.Delete(_base, recursive: true);
        }

        [DllImport("libc", SetLastError = true)]
        private static extern int lchown(string path, uint uid, uint gid);

        [DllImport("libc")]
        private static extern uint geteuid();

        private static bool IsRoot => geteuid() == 0;

        /// <summary>
        /// A directory of another user: as root, one of ours given to nobody (65534); otherwise "/", which is root's.
        /// </summary>
        private string DirectoryOfAnotherUser(out string owner)
        {
            if (!IsRoot)
            {
                owner = "uid 0 (root)";
                return "/";
            }
            string dir = Path.Combine(_base, "squatted");
            Directory.CreateDirectory(dir);
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Assert.Equal(0, lchown(dir, Nobody, Nobody));
            owner = "uid 65534 (nobody)";
            return dir;
        }

        [Fact]
        public void PsipcShmDirChoosesTheDirectoryAndItIsMade0700()
        {
            string dir = Path.Combine(_base, "mine");
            Environment.SetEnvironmentVariable(Variable, dir);
            string name = NewName();
            var created = Track(SharedMemoryChannel.Create(name, 4096, true));
            Assert.Equal(Path.Combine(dir, name), created.Address);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
            var opened = Track(SharedMemoryChannel.Open(name));
            Assert.Equal(created.Address, opened.Address);
            Assert.Contains(name, SharedMemoryInfo.List().Select(i => i.Name));

            Environment.SetEnvironmentVariable(Variable, null); // the default directory does not have it
            Throws(IpcErrorKind.SharedMemoryNotFound, () => SharedMemoryChannel.Open(name));
            Assert.DoesNotContain(name, SharedMemoryInfo.List().Select(i => i.Name));

            Environment.SetEnvironmentVariable(Variable, dir);
            SharedMemoryChannel.Remove(name);
            Assert.False(File.Exists(Path.Combine(dir, name)));
        }

        [Fact]
        public void ADirectoryOfAnotherUserIsRefusedNamingItsOwnerAndTheWayOut()
        {
            string dir = DirectoryOfAnotherUser(out string owner);
            Environment.SetEnvironmentVariable(Variable, dir);
            string name = NewName();
            foreach (Action call in new Action[]
            {
                () => SharedMemoryChannel.Create(name, 4096, false),
                () => SharedMemoryChannel.Open(name),
                () => SharedMemoryChannel.Remove(name),
                () => SharedMemoryInfo.List(),
            })
            {
                var e = Throws(IpcErrorKind.SharedMemoryDirectoryNotOwned, call);
                Assert.Contains($"{dir} is a directory of {owner}", e.Message);
                Assert.Contains("another user created it first", e.Message);
                Assert.Contains(Variable, e.Message);
            }
            Assert.False(File.Exists(Path.Combine(dir, name)), "nothing was created in the other user's directory");
        }

        [Fact]
        public void ASymbolicLinkInPlaceOfTheDirectoryIsRefused()
        {
            string target = Path.Combine(_base, "target");
            Directory.CreateDirectory(target);
            File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string link = Path.Combine(_base, "link");
            File.CreateSymbolicLink(link, target);
            Environment.SetEnvironmentVariable(Variable, link);

            // A link of our own: never followed, and ours to fix.
            var e = Throws(IpcErrorKind.AccessDenied, () => SharedMemoryChannel.Create(NewName(), 4096, false));
            Assert.Contains("symbolic link", e.Message);
            Assert.Empty(Directory.GetFiles(target));

            if (IsRoot)
            {
                // A link that another user planted: squatted, and named as such.
                Assert.Equal(0, lchown(link, Nobody, Nobody));
                e = Throws(IpcErrorKind.SharedMemoryDirectoryNotOwned, () => SharedMemoryChannel.Create(NewName(), 4096, false));
                Assert.Contains("a symbolic link of uid 65534 (nobody)", e.Message);
            }
        }

        [Fact]
        public void ADirectoryOfYoursWithAnotherModeIsRefused()
        {
            string dir = Path.Combine(_base, "open");
            Directory.CreateDirectory(dir);
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            Environment.SetEnvironmentVariable(Variable, dir);
            var e = Throws(IpcErrorKind.AccessDenied, () => SharedMemoryChannel.Create(NewName(), 4096, false));
            Assert.Contains("mode 705", e.Message);
        }

        [Fact]
        public void ARelativeOrUnreachablePsipcShmDirIsAClearError()
        {
            Environment.SetEnvironmentVariable(Variable, "relative/shm");
            var e = Throws(IpcErrorKind.InvalidSharedMemoryDirectory, () => SharedMemoryChannel.Create(NewName(), 4096, false));
            Assert.Contains("not an absolute path", e.Message);
            Throws(IpcErrorKind.InvalidSharedMemoryDirectory, () => SharedMemoryChannel.Open(NewName()));
            Throws(IpcErrorKind.InvalidSharedMemoryDirectory, () => SharedMemoryInfo.List());

            Environment.SetEnvironmentVariable(Variable, Path.Combine(_base, "missing", "shm"));
            e = Throws(IpcErrorKind.InvalidSharedMemoryDirectory, () => SharedMemoryChannel.Create(NewName(), 4096, false));
            Assert.Contains("parent directory does not exist", e.Message);
            Throws(IpcErrorKind.SharedMemoryNotFound, () => SharedMemoryChannel.Open(NewName()));
            Assert.Empty(SharedMemoryInfo.List());
        }
    }
}
