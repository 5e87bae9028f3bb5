using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// The seed corpus kept in the repository: tests/PsIpc.Fuzz.Tests/corpus/&lt;target&gt;/*.bin, copied next to the
    /// test assembly. Each file is replayed as its own regression case (<see cref="CorpusReplayTests"/>) and seeds the
    /// target's mutations. Names say what a file is: valid-*, hostile-*, and finding-* for what a fuzzer once found.
    /// </summary>
    internal static class Corpus
    {
        public static string DirectoryOf(string target) => Path.Combine(AppContext.BaseDirectory, "corpus", target);

        public static IReadOnlyList<string> FileNames(string target)
        {
            string dir = DirectoryOf(target);
            if (!Directory.Exists(dir)) return Array.Empty<string>();
            return Directory.GetFiles(dir, "*.bin").Select(Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToList()!;
        }

        public static byte[] Read(string target, string fileName) => File.ReadAllBytes(Path.Combine(DirectoryOf(target), fileName));

        /// <summary>The target's files (at least one: an empty input when the directory is empty).</summary>
        public static IReadOnlyList<byte[]> Seeds(string target)
        {
            var seeds = FileNames(target).Select(n => Read(target, n)).ToList();
            if (seeds.Count == 0) seeds.Add(Array.Empty<byte>());
            return seeds;
        }
    }
}
