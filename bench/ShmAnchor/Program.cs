// Shared memory anchors for bench/Invoke-Bench.ps1.
//
//   ShmAnchor <ring|ring-batch> <count>
//       The PsIpc queue core without PowerShell: creates a SharedMemoryQueue (16 MiB), starts a copy of
//       itself as the single producer and takes <count> 16-byte messages as the single consumer, with
//       Receive(into, 4096, ...). "ring": the producer calls Send once per message; "ring-batch": it calls
//       SendMany with 256 messages at a time. Timed by the consumer from the first message taken to the last.
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
            if (args.Length == 2)
            {
                int count = int.Parse(args[1], CultureInfo.InvariantCulture);
                Measurement m = args[0] switch
                {
                    "ring" or "ring-batch" or "handoff" => Consume(args[0], count),
                    "memcpy" => Copy(count, allocate: false),
                    "memcpy-alloc" => Copy(count, allocate: true),
                    _ => throw new ArgumentException($"unknown mode '{args[0]}'"),
                };
                Console.WriteLine(FormattableString.Invariant(
                    $"{{\"mode\":\"{args[0]}\",\"messages\":{m.Messages},\"seconds\":{m.Seconds:R},\"bytes\":{m.Bytes}}}"));
                return 0;
            }
            Console.Error.WriteLine("usage: ShmAnchor <ring|ring-batch|handoff|memcpy|memcpy-alloc> <count> | ShmAnchor producer <mode> <queueName> <count>");
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"ShmAnchor: {e}");
            return 1;
        }
    }

    private readonly record struct Measurement(long Messages, double Seconds, long Bytes);

    private static Measurement Consume(string mode, int count)
    {
        string name = $"shmanchor-{Environment.ProcessId}";
        bool big = mode == "handoff";
        using var queue = SharedMemoryChannel.Create(name, big ? Slots * (PayloadSize + 8L) : RingCapacity, queue: true);
        try
        {
            using Process producer = StartProducer(mode, name, count);
            var into = new List<IpcMessage>(ReceiveBatch);
            long taken = 0, bytes = 0;
            var stopwatch = new Stopwatch();
            while (taken < count)
            {
                into.Clear();
                int n = queue.Receive(into, (int)Math.Min(ReceiveBatch, count - taken), Deadline.After(Patience), CancellationToken.None);
                if (n <= 0) throw new TimeoutException($"no message within {Patience.TotalSeconds} s after {taken} of {count}");
                if (taken == 0)
                {
                    stopwatch.Start();
                    for (int i = 1; i < into.Count; i++) bytes += into[i].Payload.Length;
                }
                else
                {
                    foreach (IpcMessage m in into) bytes += m.Payload.Length;
                }
                taken += n;
            }
            stopwatch.Stop();
            producer.WaitForExit();
            if (producer.ExitCode != 0) throw new InvalidOperationException($"the producer exited with code {producer.ExitCode}");
            long expected = (long)(big ? PayloadSize : SmallMessageSize) * (count - 1);
            if (bytes != expected) throw new InvalidOperationException($"took {bytes} bytes, expected {expected}");
            return new Measurement(count - 1, stopwatch.Elapsed.TotalSeconds, bytes);
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
