// C# ceiling for 1 MiB messages, for bench/Invoke-Bench.ps1 (issue 12, item 3).
//
//   RawBulk <alloc|reuse> <count>
//       Listens on a Unix domain socket in the temp directory, starts a copy of itself as the sender,
//       receives <count> messages of 1 MiB and prints one JSON line: {"mode":..,"messages":..,"seconds":..,"bytes":..}.
//   RawBulk send <socketPath> <count>
//       The sender: connects and writes <count> messages (a 4-byte little-endian length, then 1 MiB).
//
// The socket is the kind PsIpc pipes use on Linux: AF_UNIX stream, kernel buffers of 1 MiB both ways
// (PsIpc.Transport/Platform/SocketBuffers), blocking calls. The receiver reads each message into a new
// byte[] (alloc: GC.AllocateUninitializedArray, the cheapest new array .NET has, as a receiver that hands
// each message on must) or into one reused buffer (reuse: the wire's own ceiling). Timed by the receiver
// from the moment it has taken the first message to the moment it has taken the last.

using System;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Net.Sockets;

internal static class Program
{
    private const int PayloadSize = 1024 * 1024;
    private const int KernelBuffer = 1024 * 1024;

    private static int Main(string[] args)
    {
        try
        {
            if (args.Length == 3 && args[0] == "send")
            {
                Send(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
                return 0;
            }
            if (args.Length == 2 && (args[0] == "alloc" || args[0] == "reuse"))
            {
                Console.WriteLine(Receive(args[0], int.Parse(args[1], CultureInfo.InvariantCulture)));
                return 0;
            }
            Console.Error.WriteLine("usage: RawBulk <alloc|reuse> <count> | RawBulk send <socketPath> <count>");
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"RawBulk: {e}");
            return 1;
        }
    }

    private static Socket NewSocket()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.SendBufferSize = KernelBuffer;
        socket.ReceiveBufferSize = KernelBuffer;
        return socket;
    }

    private static string Receive(string mode, int count)
    {
        string path = Path.Combine(Path.GetTempPath(), $"rawbulk-{Environment.ProcessId}.sock");
        File.Delete(path);
        using Socket listener = NewSocket();
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        using Process sender = StartSender(path, count);
        using Socket socket = listener.Accept();
        File.Delete(path);
        socket.SendBufferSize = KernelBuffer;
        socket.ReceiveBufferSize = KernelBuffer;

        var header = new byte[4];
        byte[] reused = new byte[PayloadSize];
        var stopwatch = new Stopwatch();
        long total = 0;
        for (int i = 0; i < count; i++)
        {
            ReadExactly(socket, header, 0, 4);
            int length = BinaryPrimitives.ReadInt32LittleEndian(header);
            byte[] message = mode == "alloc" ? GC.AllocateUninitializedArray<byte>(length) : reused;
            ReadExactly(socket, message, 0, length);
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
        sender.WaitForExit();
        if (sender.ExitCode != 0)
        {
            throw new InvalidOperationException($"the sender exited with {sender.ExitCode}");
        }
        if (total != (long)PayloadSize * (count - 1))
        {
            throw new InvalidDataException($"received {total} bytes, expected {(long)PayloadSize * (count - 1)}");
        }
        return string.Create(CultureInfo.InvariantCulture,
            $"{{\"mode\":\"{mode}\",\"messages\":{count - 1},\"seconds\":{stopwatch.Elapsed.TotalSeconds:R},\"bytes\":{total}}}");
    }

    private static void ReadExactly(Socket socket, byte[] buffer, int offset, int count)
    {
        while (count > 0)
        {
            int n = socket.Receive(buffer, offset, count, SocketFlags.None);
            if (n == 0)
            {
                throw new EndOfStreamException("the sender closed in the middle of a message");
            }
            offset += n;
            count -= n;
        }
    }

    private static Process StartSender(string path, int count)
    {
        string host = Environment.ProcessPath ?? throw new InvalidOperationException("This process has no path to start a peer from.");
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Program).Assembly.Location);
        }
        foreach (string arg in new[] { "send", path, count.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }
        return Process.Start(start) ?? throw new InvalidOperationException($"Could not start {host}.");
    }

    private static void Send(string path, int count)
    {
        var payload = new byte[PayloadSize];
        new Random(42).NextBytes(payload);
        var header = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(header, payload.Length);
        using Socket socket = NewSocket();
        socket.Connect(new UnixDomainSocketEndPoint(path));
        for (int i = 0; i < count; i++)
        {
            socket.Send(header);
            socket.Send(payload);
        }
        socket.Shutdown(SocketShutdown.Send);
    }
}
