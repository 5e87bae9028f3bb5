// Raw .NET named pipe anchor for bench/Invoke-Bench.ps1.
//
//   RawPipe <strings|bytes|bytes-alloc|roundtrip> <count>
//       Runs the measuring side (pipe server), starts a copy of itself as the client process,
//       and prints one JSON line: {"mode":..,"messages":..,"seconds":..,"bytes":..}.
//   RawPipe client <mode> <pipeName> <count>
//       The other process: sends the messages (strings, bytes) or echoes them (roundtrip).
//
// Wire: every message is a 4-byte little-endian length followed by the payload.
// One-way modes are timed by the receiver, from the moment it has taken the first message to the
// moment it has taken the last, so process start-up and connecting are outside the measurement.

using System;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.IO.Pipes;
using System.Text;

internal static class Program
{
    private const int StreamBufferSize = 64 * 1024;
    private const int BytesPayloadSize = 1024 * 1024;
    private const int RoundTripWarmUp = 1000;

    private static int Main(string[] args)
    {
        try
        {
            if (args.Length == 4 && args[0] == "client")
            {
                RunClient(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture));
                return 0;
            }
            if (args.Length == 2)
            {
                Console.WriteLine(RunServer(args[0], int.Parse(args[1], CultureInfo.InvariantCulture)));
                return 0;
            }
            Console.Error.WriteLine("usage: RawPipe <strings|bytes|bytes-alloc|roundtrip> <count> | RawPipe client <mode> <pipeName> <count>");
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"RawPipe: {e}");
            return 1;
        }
    }

    private static string RunServer(string mode, int count)
    {
        string pipeName = $"rawpipe-bench-{Environment.ProcessId}";
        using var server = new NamedPipeServerStream(pipeName, PipeDirection.InOut, 1, PipeTransmissionMode.Byte, PipeOptions.None);
        using Process client = StartClient(mode, pipeName, count);
        server.WaitForConnection();

        Measurement m = mode switch
        {
            "strings" => ReceiveStrings(server, count),
            "bytes" => ReceiveBytes(server, count, freshArrayPerMessage: false),
            "bytes-alloc" => ReceiveBytes(server, count, freshArrayPerMessage: true),
            "roundtrip" => PingPong(server, count),
            _ => throw new ArgumentException($"unknown mode '{mode}'"),
        };

        client.WaitForExit();
        if (client.ExitCode != 0)
        {
            throw new InvalidOperationException($"client exited with {client.ExitCode}");
        }
        return string.Create(CultureInfo.InvariantCulture,
            $"{{\"mode\":\"{mode}\",\"messages\":{m.Messages},\"seconds\":{m.Seconds:R},\"bytes\":{m.Bytes}}}");
    }

    private static Process StartClient(string mode, string pipeName, int count)
    {
        // Under `dotnet RawPipe.dll` the process path is the dotnet host; under the apphost it is us.
        string host = Environment.ProcessPath ?? throw new InvalidOperationException("This process has no path to start a peer from.");
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Program).Assembly.Location);
        }
        foreach (string arg in new[] { "client", mode, pipeName, count.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }
        return Process.Start(start) ?? throw new InvalidOperationException($"Could not start {host}.");
    }

    private static void RunClient(string mode, string pipeName, int count)
    {
        using var client = new NamedPipeClientStream(".", pipeName, PipeDirection.InOut, PipeOptions.None);
        client.Connect(30_000);
        switch (mode)
        {
            case "strings": SendStrings(client, count); break;
            case "bytes":
            case "bytes-alloc": SendBytes(client, count); break;
            case "roundtrip": Echo(client); break;
            default: throw new ArgumentException($"unknown mode '{mode}'");
        }
    }

    // ---- 16-byte strings: batched writes through a BufferedStream, one flush at the end.

    private static void SendStrings(Stream pipe, int count)
    {
        var strings = new string[count];
        for (int i = 0; i < count; i++)
        {
            strings[i] = "msg-" + i.ToString("D12", CultureInfo.InvariantCulture);
        }

        using var output = new BufferedStream(pipe, StreamBufferSize);
        Span<byte> frame = stackalloc byte[4 + 64];
        foreach (string s in strings)
        {
            int length = Encoding.UTF8.GetBytes(s, frame.Slice(4));
            BinaryPrimitives.WriteInt32LittleEndian(frame, length);
            output.Write(frame.Slice(0, 4 + length));
        }
        output.Flush();
    }

    private static Measurement ReceiveStrings(Stream pipe, int count)
    {
        var input = new BufferedStream(pipe, StreamBufferSize);
        var header = new byte[4];
        var payload = new byte[1024];
        long checksum = 0;
        var stopwatch = new Stopwatch();
        for (int i = 0; i < count; i++)
        {
            input.ReadExactly(header);
            int length = BinaryPrimitives.ReadInt32LittleEndian(header);
            input.ReadExactly(payload, 0, length);
            string message = Encoding.UTF8.GetString(payload, 0, length);
            checksum += message.Length;
            if (i == 0)
            {
                stopwatch.Start();
            }
        }
        stopwatch.Stop();
        if (checksum != 16L * count)
        {
            throw new InvalidDataException($"expected {count} 16-character strings, got {checksum} characters");
        }
        return new Measurement(count - 1, stopwatch.Elapsed.TotalSeconds, 16L * (count - 1));
    }

    // ---- 1 MiB byte[] messages. "bytes" reads every message into one reused buffer (the pipe's
    // ceiling); "bytes-alloc" allocates a fresh array per message, as a receiver that hands each
    // message on as an object must.

    private static void SendBytes(Stream pipe, int count)
    {
        var payload = new byte[BytesPayloadSize];
        new Random(42).NextBytes(payload);
        using var output = new BufferedStream(pipe, StreamBufferSize);
        var header = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(header, payload.Length);
        for (int i = 0; i < count; i++)
        {
            output.Write(header);
            output.Write(payload);
        }
        output.Flush();
    }

    private static Measurement ReceiveBytes(Stream pipe, int count, bool freshArrayPerMessage)
    {
        var input = new BufferedStream(pipe, StreamBufferSize);
        var header = new byte[4];
        byte[]? reused = null;
        long total = 0;
        var stopwatch = new Stopwatch();
        for (int i = 0; i < count; i++)
        {
            input.ReadExactly(header);
            int length = BinaryPrimitives.ReadInt32LittleEndian(header);
            byte[] message = freshArrayPerMessage ? new byte[length] : (reused ??= new byte[length]);
            input.ReadExactly(message, 0, length);
            if (i == 0)
            {
                stopwatch.Start();
            }
            else
            {
                total += length;
            }
        }
        stopwatch.Stop();
        return new Measurement(count - 1, stopwatch.Elapsed.TotalSeconds, total);
    }

    // ---- Round trip: the server sends "ping" and waits for the client's echo, flushing every message.

    private static Measurement PingPong(Stream pipe, int count)
    {
        var input = new BufferedStream(pipe, StreamBufferSize);
        var output = new BufferedStream(pipe, StreamBufferSize);
        byte[] ping = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(ping, 4);
        Encoding.ASCII.GetBytes("ping", 0, 4, ping, 4);
        var reply = new byte[1024];

        var stopwatch = new Stopwatch();
        for (int i = -RoundTripWarmUp; i < count; i++)
        {
            if (i == 0)
            {
                stopwatch.Start();
            }
            output.Write(ping);
            output.Flush();
            input.ReadExactly(reply, 0, 4);
            input.ReadExactly(reply, 0, BinaryPrimitives.ReadInt32LittleEndian(reply));
        }
        stopwatch.Stop();

        BinaryPrimitives.WriteInt32LittleEndian(ping, 0); // a zero-length message ends the echo
        output.Write(ping, 0, 4);
        output.Flush();
        return new Measurement(count, stopwatch.Elapsed.TotalSeconds, 0);
    }

    private static void Echo(Stream pipe)
    {
        var input = new BufferedStream(pipe, StreamBufferSize);
        var output = new BufferedStream(pipe, StreamBufferSize);
        var header = new byte[4];
        var payload = new byte[1024];
        while (true)
        {
            input.ReadExactly(header);
            int length = BinaryPrimitives.ReadInt32LittleEndian(header);
            if (length == 0)
            {
                return;
            }
            input.ReadExactly(payload, 0, length);
            output.Write(header);
            output.Write(payload, 0, length);
            output.Flush();
        }
    }

    private readonly record struct Measurement(long Messages, double Seconds, long Bytes);
}
