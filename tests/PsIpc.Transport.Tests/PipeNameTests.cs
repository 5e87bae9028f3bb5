using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using PsIpc.Transport.Pipes;
using Xunit;

namespace PsIpc.Transport.Tests
{
    public class PipeNameTests
    {
        private const string Prefix = "CoreFxPipe_";

        // The longest name whose socket path fits this machine's temp directory and sun_path limit.
        private static int LongestFittingName()
        {
            int limit = OperatingSystem.IsLinux() ? 107 : 103;
            int used = Encoding.UTF8.GetByteCount(Path.Combine(Path.GetTempPath(), Prefix));
            return limit - used;
        }

        [Theory]
        [InlineData("a")]
        [InlineData("Z")]
        [InlineData("7")]
        [InlineData("my-pipe_1.v2")]
        [InlineData("a.")]
        [InlineData("_leading-underscore")]
        [InlineData("-leading-dash")]
        [InlineData("ABCxyz0123456789")]
        public void ValidNamesParse(string name)
        {
            PipeName pipe = PipeName.Parse(name);

            Assert.Equal(name, pipe.Name);
            Assert.Equal(name, pipe.ToString());
        }

        [Fact]
        public void UnixPathIsCoreFxPipeInTheTempDirectory()
        {
            PipeName pipe = PipeName.Parse("abc");

            Assert.Equal(Path.Combine(Path.GetTempPath(), "CoreFxPipe_abc"), pipe.Path);
        }

        [Theory]
        [InlineData("a b")]
        [InlineData("a/b")]
        [InlineData("a\\b")]
        [InlineData("..")]
        [InlineData("a:b")]
        [InlineData("a*")]
        [InlineData("tab\t")]
        [InlineData("nul\0")]
        [InlineData("é")]
        [InlineData("名前")]
        public void InvalidCharactersAreRejected(string name)
        {
            var e = Assert.Throws<IpcException>(() => PipeName.Parse(name));

            Assert.Equal(IpcErrorKind.InvalidPipeName, e.Kind);
            Assert.Equal(name, e.Target);
        }

        [Theory]
        [InlineData("")]
        [InlineData(null)]
        public void EmptyNameIsRejected(string? name)
        {
            var e = Assert.Throws<IpcException>(() => PipeName.Parse(name));

            Assert.Equal(IpcErrorKind.InvalidPipeName, e.Kind);
        }

        [Theory]
        [InlineData(".")]
        [InlineData(".hidden")]
        public void LeadingDotIsRejected(string name)
        {
            var e = Assert.Throws<IpcException>(() => PipeName.Parse(name));

            Assert.Equal(IpcErrorKind.InvalidPipeName, e.Kind);
        }

        [Fact]
        public void MoreThanOneHundredCharactersIsTooLong()
        {
            string name = new string('a', PipeName.MaxLength + 1);

            var e = Assert.Throws<IpcException>(() => PipeName.Parse(name));

            Assert.Equal(IpcErrorKind.PipeNameTooLong, e.Kind);
        }

        [Fact]
        public void OverlongNameWithBadCharactersReportsTheLength()
        {
            var e = Assert.Throws<IpcException>(() => PipeName.Parse(new string('/', 200)));

            Assert.Equal(IpcErrorKind.PipeNameTooLong, e.Kind);
        }

        [Fact]
        public void LongestNameThatFitsTheSocketPathLimitParses()
        {
            int length = LongestFittingName();
            Assert.InRange(length, 1, PipeName.MaxLength - 1); // this machine's temp path leaves less than 100

            PipeName pipe = PipeName.Parse(new string('n', length));

            Assert.Equal(OperatingSystem.IsLinux() ? 107 : 103, Encoding.UTF8.GetByteCount(pipe.Path));
        }

        [Fact]
        public void NameWithinOneHundredCharactersButBeyondTheSocketPathLimitIsTooLong()
        {
            int length = LongestFittingName() + 1;
            Assert.InRange(length, 1, PipeName.MaxLength);

            var e = Assert.Throws<IpcException>(() => PipeName.Parse(new string('n', length)));

            Assert.Equal(IpcErrorKind.PipeNameTooLong, e.Kind);
            Assert.Contains(Path.GetTempPath().TrimEnd('/'), e.Message);
        }

        [Fact]
        public void OneHundredCharacterNameIsTooLongForASocketPath()
        {
            // With /tmp/ the path is 116 bytes, beyond Linux's 107.
            var e = Assert.Throws<IpcException>(() => PipeName.Parse(new string('x', PipeName.MaxLength)));

            Assert.Equal(IpcErrorKind.PipeNameTooLong, e.Kind);
        }

        [Fact]
        public void NewUniqueNameIsValidAndParses()
        {
            string name = PipeName.NewUniqueName();

            Assert.StartsWith($"psipc-{Environment.ProcessId}-", name);
            Assert.Equal(name, PipeName.Parse(name).Name);
        }

        [Fact]
        public void NewUniqueNameIsUnique()
        {
            var names = new HashSet<string>();
            for (int i = 0; i < 1000; i++) Assert.True(names.Add(PipeName.NewUniqueName()));
        }

        [Fact]
        public void ListServedFindsASocketFileInTheTempDirectory()
        {
            string name = Wire.UniqueName();
            string path = Wire.SocketPath(name);
            File.WriteAllBytes(path, Array.Empty<byte>());
            try
            {
                Assert.Contains(name, PipeName.ListServed());
            }
            finally
            {
                File.Delete(path);
            }
            Assert.DoesNotContain(name, PipeName.ListServed());
        }
    }

    /// <summary>Tests that change the process's TMPDIR: run alone, after the parallel tests.</summary>
    [CollectionDefinition(Name, DisableParallelization = true)]
    public class EnvironmentChangingCollection
    {
        public const string Name = "Changes environment variables";
    }

    [Collection(EnvironmentChangingCollection.Name)]
    public class PipeNameTempDirectoryTests
    {
        [Fact]
        public void LongerTmpDirLeavesLessRoomForTheName()
        {
            if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("Linux socket path limit assumed");
            string? original = Environment.GetEnvironmentVariable("TMPDIR");
            string deep = "/tmp/" + new string('d', 60) + "/";
            try
            {
                Environment.SetEnvironmentVariable("TMPDIR", deep);
                Assert.Equal(deep, Path.GetTempPath());

                // 107 - 66 (dir) - 11 (CoreFxPipe_) = 30 characters fit.
                Assert.Equal(deep + "CoreFxPipe_" + new string('a', 30), PipeName.Parse(new string('a', 30)).Path);
                var e = Assert.Throws<IpcException>(() => PipeName.Parse(new string('a', 31)));
                Assert.Equal(IpcErrorKind.PipeNameTooLong, e.Kind);
            }
            finally
            {
                Environment.SetEnvironmentVariable("TMPDIR", original);
            }
        }
    }
}
