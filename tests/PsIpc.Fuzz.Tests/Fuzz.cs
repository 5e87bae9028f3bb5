using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using CsCheck;
using Xunit.Abstractions;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// How long and with which seeds the targets run, where their corpus is, and what happens to what they find.
    /// <para>Time: PSIPC_FUZZ_SECONDS is the total for all targets (default <see cref="DefaultTotalSeconds"/>, what CI
    /// runs), shared equally; ./build.ps1 Fuzz -Seconds N sets it. PSIPC_FUZZ_SEED replays one CsCheck seed.</para>
    /// <para>A failure is shrunk by CsCheck; the smallest failing input is written to output/fuzz-findings/&lt;target&gt;/
    /// (PSIPC_FUZZ_FINDINGS overrides), to be copied into corpus/&lt;target&gt;/ as a regression case. A target that
    /// could take the whole process down (shared memory) writes each input there before running it, so a crash leaves
    /// it behind as crash-candidate.bin.</para>
    /// </summary>
    internal static class Fuzz
    {
        public const string SecondsVariable = "PSIPC_FUZZ_SECONDS";
        public const string SeedVariable = "PSIPC_FUZZ_SEED";
        public const string FindingsVariable = "PSIPC_FUZZ_FINDINGS";
        public const int DefaultTotalSeconds = 55;

        /// <summary>Every target, each with its corpus directory of the same name.</summary>
        public static readonly string[] Targets =
        {
            "frame-parser", "hello", "error-frame", "line-reader", "raw-reader", "udp-datagram",
            "connection", "handshake-server", "handshake-client", "segment-header", "queue-header",
        };

        /// <summary>How long a test waits for something that should happen at once: a safety net against hangs, never a speed check.</summary>
        public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

        public static int TotalSeconds
        {
            get
            {
                string? text = Environment.GetEnvironmentVariable(SecondsVariable);
                return int.TryParse(text, out int seconds) && seconds > 0 ? seconds : DefaultTotalSeconds;
            }
        }

        public static int SecondsPerTarget => Math.Max(1, TotalSeconds / Targets.Length);

        public static string RepositoryRoot
        {
            get
            {
                for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
                {
                    if (File.Exists(Path.Combine(dir.FullName, "PsIpc.slnx"))) return dir.FullName;
                }
                return Path.GetTempPath();
            }
        }

        public static string FindingsDirectory(string target)
        {
            string? root = Environment.GetEnvironmentVariable(FindingsVariable);
            if (string.IsNullOrEmpty(root)) root = Path.Combine(RepositoryRoot, "output", "fuzz-findings");
            return Path.Combine(root, target);
        }

        /// <summary>
        /// Runs <paramref name="check"/> on generated cases for this target's share of the time. Cases are independent;
        /// <paramref name="threads"/> 1 for targets that share a server or a crash marker.
        /// </summary>
        public static void Run<T>(string target, Gen<T> gen, Action<T> check, Func<T, byte[]> bytesOf, Func<T, string> describe,
            ITestOutputHelper output, int threads = -1, bool crashMarker = false)
        {
            if (!Targets.Contains(target)) throw new ArgumentException($"Unknown fuzz target '{target}'.", nameof(target));
            if (crashMarker && threads != 1) throw new ArgumentException("A crash marker needs one thread.", nameof(threads));
            int seconds = SecondsPerTarget;
            string findings = FindingsDirectory(target);
            string candidate = Path.Combine(findings, "crash-candidate.bin");
            var smallest = new Smallest<T>();
            string? firstFailure = null;
            long iterations = 0;
            var clock = Stopwatch.StartNew();
            if (crashMarker)
            {
                Directory.CreateDirectory(findings);
                output.WriteLine($"{target}: if the process dies, the input it was running is {candidate} (and .txt)");
            }

            void Checked(T value)
            {
                long n = System.Threading.Interlocked.Increment(ref iterations);
                if (crashMarker)
                {
                    File.WriteAllBytes(candidate, bytesOf(value));
                    File.WriteAllText(candidate + ".txt", $"iteration {n}, {clock.Elapsed.TotalSeconds:F1} s into {target}\n{describe(value)}\n");
                }
                try
                {
                    check(value);
                }
                catch (Exception e)
                {
                    smallest.Offer(value, bytesOf(value).Length, e);
                    lock (smallest)
                    {
                        if (firstFailure == null)
                        {
                            firstFailure = $"first failure at case {n}, {clock.Elapsed.TotalSeconds:F1} s into the run";
                            // A crash while shrinking would lose it: say it now.
                            if (crashMarker) File.WriteAllText(Path.Combine(findings, "first-failure.txt"), $"{firstFailure}\n{e.Message}\n{describe(value)}\n");
                        }
                    }
                    throw;
                }
            }

            s_outcomes = new System.Collections.Concurrent.ConcurrentDictionary<string, long>();
            string? seed = Environment.GetEnvironmentVariable(SeedVariable);
            try
            {
                gen.Sample(Checked, writeLine: output.WriteLine, seed: string.IsNullOrEmpty(seed) ? null : seed,
                    time: seconds, threads: threads, print: describe);
            }
            catch (Exception e) when (smallest.Value != null)
            {
                string saved = Save(findings, bytesOf(smallest.Value.Case));
                throw new Xunit.Sdk.XunitException(
                    $"{target}: {smallest.Value.Error.GetType().Name}: {smallest.Value.Error.Message}\n" +
                    $"{firstFailure}, then shrunk for the rest of the {seconds} s.\n" +
                    $"The smallest failing input ({bytesOf(smallest.Value.Case).Length} bytes) is {saved}; copy it to tests/PsIpc.Fuzz.Tests/corpus/{target}/ as a regression case.\n" +
                    $"Case: {describe(smallest.Value.Case)}\n{smallest.Value.Error}\n\nCsCheck: {e.Message}");
            }
            finally
            {
                if (crashMarker)
                {
                    File.Delete(candidate);
                    File.Delete(candidate + ".txt");
                }
            }
            output.WriteLine($"{target} outcomes: {string.Join(", ", s_outcomes.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {p.Value}"))}");
            output.WriteLine($"{target}: {iterations} cases in {clock.Elapsed.TotalSeconds:F1} s (budget {seconds} s, {SecondsVariable}={TotalSeconds} for all {Targets.Length} targets)");
        }

        private static System.Collections.Concurrent.ConcurrentDictionary<string, long> s_outcomes = new();

        /// <summary>Counts what a case came to (an error kind, "accepted", ...): the run's summary shows what the cases reached.</summary>
        public static void Outcome(string what) => s_outcomes.AddOrUpdate(what, 1, (_, n) => n + 1);

        private static string Save(string directory, byte[] bytes)
        {
            Directory.CreateDirectory(directory);
            string hash = Convert.ToHexString(SHA256.HashData(bytes)).Substring(0, 12).ToLowerInvariant();
            string path = Path.Combine(directory, $"finding-{hash}.bin");
            File.WriteAllBytes(path, bytes);
            return path;
        }

        private sealed class Smallest<T>
        {
            public sealed record Failure(T Case, int Size, Exception Error);

            private readonly object _gate = new object();

            public Failure? Value { get; private set; }

            public void Offer(T value, int size, Exception error)
            {
                lock (_gate)
                {
                    if (Value == null || size < Value.Size) Value = new Failure(value, size, error);
                }
            }
        }

        /// <summary>The property every target shares: an exception is an IpcException of one of the documented kinds.</summary>
        public static void AssertDocumented(Exception e, IReadOnlyCollection<PsIpc.Transport.IpcErrorKind> documented, string where)
        {
            if (e is PsIpc.Transport.IpcException ipc && documented.Contains(ipc.Kind)) return;
            string what = e is PsIpc.Transport.IpcException other ? $"IpcException of kind {other.Kind}" : e.GetType().FullName!;
            throw new Xunit.Sdk.XunitException(
                $"{where}: threw {what} (documented: {string.Join(", ", documented)}): {e.Message}", e);
        }

        /// <summary>Assert.True with a message built only on failure (the targets check millions of times).</summary>
        public static void Expect(bool condition, Func<string> message)
        {
            if (!condition) throw new Xunit.Sdk.XunitException(message());
        }

        public static string Hex(byte[] bytes, int max = 96) =>
            bytes.Length <= max ? Convert.ToHexString(bytes) : Convert.ToHexString(bytes, 0, max) + $"...(+{bytes.Length - max})";
    }
}
