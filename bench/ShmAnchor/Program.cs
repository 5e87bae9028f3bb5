// Shared memory anchors for bench/Invoke-Bench.ps1.
//
//   ShmAnchor <ring|ring-batch> <count> [warmUp]
//       The PsIpc queue core without PowerShell: creates a SharedMemoryQueue (16 MiB), starts a copy of
//       itself as the single producer and takes <warmUp> + <count> 16-byte messages as the single consumer,
//       with Receive(into, 4096, ...). "ring": the producer calls Send once per message; "ring-batch": it calls
//       SendMany with 256 messages at a time. Timed by the consumer from the Receive that completed the warm-up
//       (untimed: both processes' JIT tiers up meanwhile; without one, the first Receive) to the last message.
//   ShmAnchor handoff <count>
//       The same two processes with 1 MiB messages through a queue of 4 MiB (4 records), Send per message:
//       the 1 MiB handoff of the C# core without PowerShell.
//   ShmAnchor producer <ring|ring-batch|handoff> <queueName> <count>
//       The other process.
//   ShmAnchor <memcpy|memcpy-alloc> <count>
//       The ceiling of a 1 MiB handoff: in one process, <count> times, copies a 1 MiB payload into one of
//       4 slots of a native buffer and copies it out again, into one reused byte[] ("memcpy") or a new
//       byte[] per message ("memcpy-alloc", as a receiver that hands messages on must). Span.CopyTo both ways.
//
// Prints one JSON line: {"mode":..,"messages":..,"seconds":..,"bytes":..}.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.SharedMemory;

internal static unsafe class Program
{
    private const int SmallMessageSize = 16;
    private const long RingCapacity = 16L * 1024 * 1024;
    private const int ReceiveBatch = 4096;
    private const int SendBatch = 256;
    private const int PayloadSize = 1024 * 1024;
    private const int Slots = 4;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static int Main(string[] args)
    {
        try
        {
            if (args.Length == 4 && args[0] == "producer")
            {
                Produce(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture));
                return 0;
            }
            if (args.Length == 2 || args.Length == 3)
            {
                int count = int.Parse(args[1], CultureInfo.InvariantCulture);
                int warmUp = args.Length == 3 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 0;
                Measurement m = args[0] switch
                {
                    "ring" or "ring-batch" or "handoff" => Consume(args[0], count, warmUp),
                    "memcpy" => Copy(count, allocate: false),
                    "memcpy-alloc" => Copy(count, allocate: true),
                    _ => throw new ArgumentException($"unknown mode '{args[0]}'"),
                };
                Console.WriteLine(FormattableString.Invariant(
                    $"{{\"mode\":\"{args[0]}\",\"messages\":{m.Messages},\"seconds\":{m.Seconds:R},\"bytes\":{m.Bytes}}}"));
                return 0;
            }
            Console.Error.WriteLine("usage: ShmAnchor <ring|ring-batch|handoff|memcpy|memcpy-alloc> <count> [warmUp] | ShmAnchor producer <mode> <queueName> <count>");
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"ShmAnchor: {e}");
            return 1;
        }
    }

    private readonly record struct Measurement(long Messages, double Seconds, long Bytes);

    private static Measurement Consume(string mode, int count, int warmUp)
    {
        string name = $"shmanchor-{Environment.ProcessId}";
        bool big = mode == "handoff";
        using var queue = SharedMemoryChannel.Create(name, big ? Slots * (PayloadSize + 8L) : RingCapacity, queue: true);
        try
        {
            // The producer sends warmUp + count messages. The clock starts when a Receive has taken the warm-up
            // (at least one message when there is none): what comes after it, to the last message, is timed.
            long total = (long)warmUp + count;
            using Process producer = StartProducer(mode, name, checked((int)total));
            var into = new List<IpcMessage>(ReceiveBatch);
            long taken = 0, timedFrom = -1, bytes = 0;
            var stopwatch = new Stopwatch();
            while (taken < total)
            {
                into.Clear();
                int n = queue.Receive(into, (int)Math.Min(ReceiveBatch, total - taken), Deadline.After(Patience), CancellationToken.None);
                if (n <= 0) throw new TimeoutException($"no message within {Patience.TotalSeconds} s after {taken} of {total}");
                if (timedFrom >= 0)
                {
                    foreach (IpcMessage m in into) bytes += m.Payload.Length;
                }
                else if (taken + n >= Math.Max(1, warmUp))
                {
                    stopwatch.Start();
                    timedFrom = taken + n;
                }
                taken += n;
            }
            stopwatch.Stop();
            producer.WaitForExit();
            if (producer.ExitCode != 0) throw new InvalidOperationException($"the producer exited with code {producer.ExitCode}");
            long timed = taken - timedFrom;
            long expected = (long)(big ? PayloadSize : SmallMessageSize) * timed;
            if (bytes != expected) throw new InvalidOperationException($"took {bytes} bytes after the clock started, expected {expected}");
            return new Measurement(timed, stopwatch.Elapsed.TotalSeconds, bytes);
        }
        finally
        {
            SharedMemoryChannel.Remove(name);
        }
    }

    private static Process StartProducer(string mode, string name, int count)
    {
        // Under `dotnet ShmAnchor.dll` the process path is the dotnet host; under the apphost it is us.
        string host = Environment.ProcessPath ?? throw new InvalidOperationException("This process has no path to start a peer from.");
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") start.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (string arg in new[] { "producer", mode, name, count.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(arg);
        return Process.Start(start) ?? throw new InvalidOperationException($"Could not start {host}.");
    }

    private static void Produce(string mode, string name, int count)
    {
        using var queue = (SharedMemoryQueue)SharedMemoryChannel.Open(name);
        var payload = new byte[mode == "handoff" ? PayloadSize : SmallMessageSize];
        "msg-000000000000"u8.CopyTo(payload);
        Deadline deadline = Deadline.After(Patience);
        if (mode == "ring" || mode == "handoff")
        {
            for (int i = 0; i < count; i++) queue.Send(MessageFormat.Bytes, payload, deadline, CancellationToken.None);
            return;
        }
        var batch = new byte[SendBatch][];
        Array.Fill(batch, payload);
        int sent = 0;
        while (sent < count)
        {
            int n = Math.Min(SendBatch, count - sent);
            queue.SendMany(MessageFormat.Bytes, n == SendBatch ? batch : new ArraySegment<byte[]>(batch, 0, n), deadline, CancellationToken.None);
            sent += n;
        }
    }

    private static Measurement Copy(int count, bool allocate)
    {
        var payload = new byte[PayloadSize];
        new Random(42).NextBytes(payload);
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)(Slots * PayloadSize), 4096);
        try
        {
            new Span<byte>(buffer, Slots * PayloadSize).Clear(); // fault the pages in before timing
            var reused = new byte[PayloadSize];
            long checksum = 0;
            var stopwatch = Stopwatch.StartNew();
            for (int i = 0; i < count; i++)
            {
                var slot = new Span<byte>(buffer + (long)(i % Slots) * PayloadSize, PayloadSize);
                payload.AsSpan().CopyTo(slot);
                byte[] target = allocate ? new byte[PayloadSize] : reused;
                slot.CopyTo(target);
                checksum += target[i % PayloadSize];
            }
            stopwatch.Stop();
            GC.KeepAlive(checksum);
            return new Measurement(count, stopwatch.Elapsed.TotalSeconds, (long)count * PayloadSize);
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }
}
