using System;
using System.Globalization;
using System.IO;
using System.Text;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Pipes
{
    /// <summary>
    /// A validated pipe name and where it lives. Names are 1-100 characters of letters, digits, '.', '_'
    /// and '-' (not starting with '.'), the same on every platform. On Unix a pipe is a Unix domain socket at
    /// $TMPDIR/CoreFxPipe_&lt;name&gt;, the path .NET's NamedPipeClientStream uses, so it must also fit the
    /// platform's socket path limit.
    /// </summary>
    public sealed class PipeName
    {
        public const int MaxLength = 100;
        private const string UnixPrefix = "CoreFxPipe_";

        private PipeName(string name, string path)
        {
            Name = name;
            Path = path;
        }

        public string Name { get; }

        /// <summary>The socket file on Unix; \\.\pipe\name on Windows.</summary>
        public string Path { get; }

        public static PipeName Parse(string? name)
        {
            if (name == null || name.Length == 0)
            {
                throw new IpcException(IpcErrorKind.InvalidPipeName, "A pipe name cannot be empty.", name);
            }
            if (name.Length > MaxLength)
            {
                throw new IpcException(IpcErrorKind.PipeNameTooLong,
                    $"The pipe name is {name.Length} characters long; the limit is {MaxLength}.", name);
            }
            if (name[0] == '.' || !IsValid(name))
            {
                throw new IpcException(IpcErrorKind.InvalidPipeName,
                    $"'{name}' is not a valid pipe name: use letters, digits, '.', '_' and '-' (not starting with '.').", name);
            }
            if (UnixNative.IsWindows) return new PipeName(name, @"\\.\pipe\" + name);

            string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), UnixPrefix + name);
            int bytes = Encoding.UTF8.GetByteCount(path);
            if (bytes > UnixNative.MaxSocketPathBytes)
            {
                throw new IpcException(IpcErrorKind.PipeNameTooLong,
                    $"The pipe '{name}' would live at '{path}' ({bytes} bytes), beyond this platform's Unix socket path limit of {UnixNative.MaxSocketPathBytes} bytes. Use a shorter name or a shorter TMPDIR.",
                    name);
            }
            return new PipeName(name, path);
        }

        /// <summary>A fresh name no one else uses: psipc-&lt;pid&gt;-&lt;random&gt;.</summary>
        public static string NewUniqueName()
        {
            var random = new byte[6];
            using (var rng = System.Security.Cryptography.RandomNumberGenerator.Create()) rng.GetBytes(random);
            var sb = new StringBuilder("psipc-");
            sb.Append(System.Diagnostics.Process.GetCurrentProcess().Id).Append('-');
            foreach (byte b in random) sb.Append(b.ToString("x2", CultureInfo.InvariantCulture));
            return sb.ToString();
        }

        /// <summary>Names of the pipes whose socket files exist in the temp directory (Unix; empty on Windows).</summary>
        public static System.Collections.Generic.IEnumerable<string> ListServed()
        {
            if (UnixNative.IsWindows) yield break;
            string[] entries;
            try
            {
                entries = Directory.GetFileSystemEntries(System.IO.Path.GetTempPath(), UnixPrefix + "*");
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                yield break;
            }
            foreach (string entry in entries) yield return System.IO.Path.GetFileName(entry).Substring(UnixPrefix.Length);
        }

        private static bool IsValid(string name)
        {
            foreach (char c in name)
            {
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                if (!ok) return false;
            }
            return true;
        }

        public override string ToString() => Name;
    }
}
