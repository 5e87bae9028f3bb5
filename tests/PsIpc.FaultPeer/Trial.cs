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

namespace PsIpc.FaultPeer
{
    /// <summary>What one kill -9 trial counted.</summary>
    internal sealed class TrialResult
    {
        public long Acknowledged, Accepted, Received, Duplicates, LostAcknowledged, LostWithReceiver, Damaged;
        public string Outcome = "";
        public readonly List<string> Violations = new List<string>();
        public readonly List<string> Orphans = new List<string>();
    }

    /// <summary>
    /// One trial: a peer process streams to (or from) an end in this process, and is killed with SIGKILL at a
    /// random moment; this process is the survivor. Roles: "sender" (a client that sends to a server here),
    /// "receiver" (a client that receives from a server here), "server" (a server process that sends to, or
    /// in odd trials receives from, a client here). A queue has no server: its two ends open one ring.
    /// </summary>
    internal static class Trial
    {
        private const double SurvivorSendSeconds = 2;   // the survivor's Send/Flush deadline: its timeout
        private const double HungSeconds = 30;          // no outcome this long after the kill: a hung survivor

        public static TrialResult Run(string transport, string role, int index, int seed, string prefix, string workDir)
        {
            var random = new Random(seed);
            var result = new TrialResult();
            string name = $"{prefix}{transport[0]}{(role == "sender" ? 'a' : role == "receiver" ? 'b' : 'c')}{index}";
            string address = transport == "unix" ? Path.Combine(workDir, name + ".sock") : transport == "tcp" ? "0" : name;
            bool victimIsServer = role == "server";
            bool victimSends = role == "sender" || (victimIsServer && index % 2 == 0);
            string victimRole = (victimIsServer ? "serve-" : "") + (victimSends ? "send" : "receive");

            IpcChannel? server = victimIsServer ? null : Endpoints.Listen(transport, address);
            using var victim = new Victim(transport, victimRole, server == null ? address : Endpoints.AddressOf(transport, server), seed);
            IpcChannel? local = server;
            var killedAt = new long[1];
            var killer = new Thread(() =>
            {
                if (!victim.Progress.Wait(TimeSpan.FromSeconds(60))) result.Violations.Add($"the peer never streamed: {victim.Errors}");
                Thread.Sleep(random.Next(0, 100));   // the random moment of the kill (not a synchronisation)
                victim.Kill();
                Volatile.Write(ref killedAt[0], Stopwatch.GetTimestamp());
            });
            try
            {
                // The stream starts once the peer has connected (or listens): a loaded machine starts processes slowly.
                if (!victim.Ready.Wait(TimeSpan.FromSeconds(120))) throw new TimeoutException("the peer never said ready: " + victim.Errors);
                local ??= Endpoints.Connect(transport, victim.ReadyLine.Substring("ready ".Length));
                killer.Start();
                if (victimSends) ReceiveAll(local, transport, result, killedAt);
                else SendAll(local, transport, random, result);
                killer.Join();
                if (victimSends) CountSent(victim.Lines, result);
                else CountReceived(victim.Lines, transport, name, result);
            }
            finally
            {
                if (killer.IsAlive) { victim.Kill(); killer.Join(); }
                Clean(local, transport, name, address, victimIsServer, result);
            }
            return result;
        }

        // The survivor receives until the stream ends with an error, the end of the stream, or (a queue, which has
        // no peer to lose) a quarter of a second without messages, begun after the kill (the peer is dead by then:
        // Victim.Kill waits for its exit, so nothing more can come).
        private static void ReceiveAll(IpcChannel local, string transport, TrialResult result, long[] killedAt)
        {
            var seen = new HashSet<int>();
            var batch = new List<IpcMessage>();
            int next = 1;
            while (true)
            {
                long sliceStart = Stopwatch.GetTimestamp();
                batch.Clear();
                int n = local.Receive(batch, 64, Endpoints.Within(0.25), CancellationToken.None);
                if (n < 0) { result.Outcome = "EndOfStream"; return; }
                foreach (IpcMessage m in batch)
                {
                    if (m.Fault != null) { result.Outcome = m.Fault.Kind.ToString(); return; }
                    int seq = Endpoints.Check(m.Payload);
                    if (seq < 0) { result.Damaged++; continue; }
                    result.Received++;
                    if (!seen.Add(seq)) result.Duplicates++;
                    else if (seq != next) result.Violations.Add($"message {seq} came where {next} was due");
                    next = Math.Max(next, seq + 1);
                }
                long killed = Volatile.Read(ref killedAt[0]);
                if (n == 0 && killed != 0 && sliceStart > killed)
                {
                    // A slice without a message, begun after the kill. A queue: everything is in. A socket server keeps
                    // listening for other clients: its client's connection has ended when it has no peer left.
                    if (transport == "queue") { result.Outcome = "ReceiveTimeout"; return; }
                    if (local.PeerCount == 0) { result.Outcome = "EndOfStream"; return; }
                    if (Stopwatch.GetElapsedTime(killed).TotalSeconds > HungSeconds) { result.Outcome = "Hung"; return; }
                }
            }
        }

        // The survivor sends numbered messages until an error ends it; Accepted: Send returned, Acknowledged: Flush returned.
        private static void SendAll(IpcChannel local, string transport, Random random, TrialResult result)
        {
            int seq = 0;
            try
            {
                while (seq < 10_000_000)
                {
                    int batch = random.Next(1, 9);
                    for (int i = 0; i < batch; i++)
                    {
                        local.Send(MessageFormat.Bytes, Endpoints.Message(seq + 1, random, transport == "queue"), Endpoints.Within(SurvivorSendSeconds), CancellationToken.None);
                        result.Accepted = ++seq;
                    }
                    local.Flush(Endpoints.Within(SurvivorSendSeconds), CancellationToken.None);
                    result.Acknowledged = seq;
                }
                result.Outcome = "NoError";
            }
            catch (IpcException e)
            {
                result.Outcome = e.Kind.ToString();
            }
        }

        // Victim sent: what it printed as acknowledged must all have arrived.
        private static void CountSent(string[] lines, TrialResult result)
        {
            long acked = lines.Where(l => l.StartsWith("acked ", StringComparison.Ordinal)).Select(l => long.Parse(l.Substring(6), System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();
            result.Acknowledged = acked;
            result.Accepted = acked;
            // Messages arrive in order, so what arrived is 1..Received (a gap is reported as a violation when it happens).
            result.LostAcknowledged = Math.Max(0, acked - (result.Received - result.Duplicates));
        }

        // Victim received: it printed each message it got; a queue's remaining records are drained by a new consumer.
        private static void CountReceived(string[] lines, string transport, string name, TrialResult result)
        {
            var got = lines.Where(l => l.StartsWith("got ", StringComparison.Ordinal)).Select(l => int.Parse(l.Substring(4), System.Globalization.CultureInfo.InvariantCulture)).ToList();
            result.Damaged += lines.Count(l => l == "damaged");
            for (int i = 0; i < got.Count; i++)
            {
                if (got[i] != i + 1) { result.Violations.Add($"the receiver got {got[i]} where {i + 1} was due"); break; }
            }
            var all = new HashSet<int>(got);
            result.Duplicates += got.Count - all.Count;
            result.Received = all.Count;
            if (transport != "queue")
            {
                // No acknowledgement crosses a pipe or socket: what the dead receiver had not printed is lost with it.
                result.LostWithReceiver = Math.Max(0, result.Accepted - all.Count);
                return;
            }
            using (IpcChannel drain = SharedMemoryChannel.Open(name))
            {
                var batch = new List<IpcMessage>();
                while (true)
                {
                    batch.Clear();
                    if (drain.Receive(batch, 256, Endpoints.Within(0.2), CancellationToken.None) <= 0) break;
                    foreach (IpcMessage m in batch)
                    {
                        int seq = Endpoints.Check(m.Payload);
                        if (seq < 0) result.Damaged++;
                        else if (!all.Add(seq)) result.Duplicates++;
                    }
                }
            }
            // A queue's Send returns once the record is in the ring: every accepted message is acknowledged. A killed
            // consumer loses only the batch it had taken (at most 16, its Receive's maximum) and not processed.
            var lost = Enumerable.Range(1, (int)result.Accepted).Where(s => !all.Contains(s)).ToList();
            int firstUnprinted = got.Count + 1;
            result.LostWithReceiver = lost.Count;
            if (lost.Count > 16 || lost.Any(s => s < firstUnprinted || s >= firstUnprinted + 16))
            {
                result.LostAcknowledged = lost.Count;
                result.Violations.Add($"lost {lost.Count} records ({string.Join(",", lost.Take(5))}...) beyond the dead consumer's batch after {got.Count}");
            }
        }

        private static void Clean(IpcChannel? local, string transport, string name, string address, bool victimIsServer, TrialResult result)
        {
            string? file = transport == "pipe" || transport == "unix"
                ? (victimIsServer ? (transport == "pipe" ? Path.Combine(Path.GetTempPath(), "CoreFxPipe_" + name) : address) : local?.Address)
                : null;
            local?.Close(Endpoints.Within(5));
            if (transport == "queue")
            {
                SharedMemoryChannel.Remove(name);
                if (File.Exists(SharedMemoryChannel.PathOf(name))) result.Orphans.Add(SharedMemoryChannel.PathOf(name));
                return;
            }
            if (victimIsServer && file != null)
            {
                // A killed server cannot delete its socket file: the next server of that name replaces it and deletes it on close.
                try
                {
                    using IpcChannel again = Endpoints.Listen(transport, transport == "pipe" ? name : address);
                }
                catch (IpcException e)
                {
                    result.Violations.Add($"a new server could not take the name of the killed one: {e.Kind}");
                }
            }
            if (file != null && File.Exists(file)) result.Orphans.Add(file);
        }
    }
}
