using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading.Tasks;
using PsIpc.Transport.SharedMemory;

namespace PsIpc.FaultPeer
{
    /// <summary>
    /// One long-lived process that runs the kill -9 trials of every transport and role, several at a time,
    /// and writes one summary per transport and role (JSON, and a table on standard output).
    /// </summary>
    internal static class Driver
    {
        // drive <out.json> <trials> <parallel> <run-prefix> <work-dir> <transport:role,...>
        public static int Run(string[] args)
        {
            string outFile = args[1];
            int trials = int.Parse(args[2], CultureInfo.InvariantCulture);
            int parallel = int.Parse(args[3], CultureInfo.InvariantCulture);
            string prefix = args[4], workDir = args[5];
            string[][] combos = args[6].Split(',').Select(c => c.Split(':')).ToArray();
            int seedBase = Environment.TickCount;

            var results = new ConcurrentDictionary<(int Combo, int Trial), TrialResult>();
            var started = DateTime.UtcNow;
            // Interleaved, so that every transport and role meets the same load.
            var work = Enumerable.Range(0, trials).SelectMany(t => Enumerable.Range(0, combos.Length).Select(c => (Combo: c, Trial: t))).ToList();
            Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = parallel }, item =>
            {
                int seed = seedBase + item.Combo * 100_000 + item.Trial;
                TrialResult r;
                try
                {
                    r = Trial.Run(combos[item.Combo][0], combos[item.Combo][1], item.Trial, seed, prefix, workDir);
                }
                catch (Exception e)
                {
                    r = new TrialResult { Outcome = "DriverError" };
                    r.Violations.Add(e.GetType().Name + ": " + e.Message);
                }
                for (int i = 0; i < r.Violations.Count; i++) r.Violations[i] = $"trial {item.Trial} (seed {seed}): {r.Violations[i]}";
                results[item] = r;
            });

            var summaries = new List<Dictionary<string, object>>();
            for (int c = 0; c < combos.Length; c++)
            {
                var rs = results.Where(kv => kv.Key.Combo == c).Select(kv => kv.Value).ToList();
                summaries.Add(new Dictionary<string, object>
                {
                    ["Transport"] = combos[c][0],
                    ["Role"] = combos[c][1],
                    ["Trials"] = rs.Count,
                    ["Acknowledged"] = rs.Sum(r => r.Acknowledged),
                    ["Accepted"] = rs.Sum(r => r.Accepted),
                    ["Received"] = rs.Sum(r => r.Received),
                    ["Duplicates"] = rs.Sum(r => r.Duplicates),
                    ["Damaged"] = rs.Sum(r => r.Damaged),
                    ["LostAcknowledged"] = rs.Sum(r => r.LostAcknowledged),
                    ["LostWithReceiver"] = rs.Sum(r => r.LostWithReceiver),
                    ["Outcomes"] = rs.GroupBy(r => r.Outcome).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()),
                    ["Orphans"] = rs.SelectMany(r => r.Orphans).ToList(),
                    ["Violations"] = rs.SelectMany(r => r.Violations).Take(20).ToList(),
                    ["ViolationCount"] = rs.Sum(r => r.Violations.Count),
                });
            }
            // Whatever the run left anywhere: pipe sockets, Unix sockets, shared memory files.
            var left = new List<string>();
            left.AddRange(Directory.GetFiles(Path.GetTempPath(), "CoreFxPipe_" + prefix + "*"));
            if (Directory.Exists(workDir)) left.AddRange(Directory.GetFileSystemEntries(workDir));
            string shmDir = Path.GetDirectoryName(SharedMemoryChannel.PathOf(prefix + "x"))!;
            if (Directory.Exists(shmDir)) left.AddRange(Directory.GetFiles(shmDir, prefix + "*"));

            var report = new Dictionary<string, object>
            {
                ["Seconds"] = Math.Round((DateTime.UtcNow - started).TotalSeconds, 1),
                ["Parallel"] = parallel,
                ["Summaries"] = summaries,
                ["LeftBehind"] = left,
            };
            File.WriteAllText(outFile, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"{"transport",-9} {"killed",-8} {"trials",6} {"acked",8} {"accepted",8} {"received",8} {"dups",5} {"lost-ack",8} {"lost-rcv",8}  outcomes");
            foreach (var s in summaries)
            {
                string outcomes = string.Join(", ", ((Dictionary<string, int>)s["Outcomes"]).Select(kv => $"{kv.Key} {kv.Value}"));
                Console.WriteLine($"{s["Transport"],-9} {s["Role"],-8} {s["Trials"],6} {s["Acknowledged"],8} {s["Accepted"],8} {s["Received"],8} {s["Duplicates"],5} {s["LostAcknowledged"],8} {s["LostWithReceiver"],8}  {outcomes}");
            }
            return 0;
        }
    }
}
