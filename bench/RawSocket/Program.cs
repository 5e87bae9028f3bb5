// Bench anchor and load generator for the TCP rows of bench/Invoke-Bench.ps1.
//
//   dotnet RawSocket.dll server <readyFile>
//     A raw C# TCP echo server on 127.0.0.1, port 0: each message is a 4-byte little-endian length and
//     the payload, answered with the same bytes (the protocol of bench/anchors/asyncio_echo.py). One
//     async receive/send loop per connection (Socket.ReceiveAsync/SendAsync on the runtime's epoll
//     engine), TCP_NODELAY. Writes "tcp:<port>" to <readyFile> once it listens and serves until
//     "<readyFile>.done" exists; prints {"messages", "connections"} as it exits.
//
//   dotnet RawSocket.dll clients <readyFile> <raw|psipc> <clients> <roundTripsPerClient> [warmUp]
//     The load generator: waits for <readyFile>, opens <clients> connections (psipc: each says Hello and
//     waits for the server's, docs/protocol.md), then every client runs its round trips at once, one
//     async loop each, all in this process: send a request, await the reply, check it, again. raw: a
//     4-byte little-endian length + b"ping"; psipc: a Text frame "ping". <warmUp> untimed round trips
//     per client come first. Timed from the first timed request to the last reply. Closes every
//     connection (psipc: Goodbye first), writes "<readyFile>.done", prints {"messages", "seconds",
//     "errors", "clients", "connectSeconds"}.
//
//   dotnet RawSocket.dll scale ...
//     The scale row's load generator (Scale.cs): thousands of PsIpc clients, some active, some slow, some idle.
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

internal static class Program
{
    private static readonly byte[] Ping = Encoding.ASCII.GetBytes("ping");
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(30);

    private static async Task<int> Main(string[] args)
    {
        try
        {
            if (args.Length == 2 && args[0] == "server") return await Server(args[1]);
            if (args.Length == 6 && args[0] == "scale")
            {
                return await Scale.Run(args[1], int.Parse(args[2]), int.Parse(args[3]), int.Parse(args[4]), int.Parse(args[5]));
            }
            if ((args.Length == 5 || args.Length == 6) && args[0] == "clients" && (args[2] == "raw" || args[2] == "psipc"))
            {
                return await Clients(args[1], args[2] == "psipc", int.Parse(args[3]), int.Parse(args[4]), args.Length == 6 ? int.Parse(args[5]) : 0);
            }
            Console.Error.WriteLine("usage: RawSocket server <readyFile> | clients <readyFile> <raw|psipc> <clients> <roundTripsPerClient> [warmUp]" +
                " | scale <readyFile> <clients> <rounds> <idlePercent> <slowPercent>");
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine(e);
            return 1;
        }
    }

    // ---- the raw C# echo server ----

    private static long s_messages, s_connections;

    private static async Task<int> Server(string readyFile)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(2048);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        string temporary = $"{readyFile}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temporary, $"tcp:{port}");
        File.Move(temporary, readyFile, true);

        _ = Task.Run(async () =>
        {
            while (true)
            {
                Socket client;
                try { client = await listener.AcceptAsync(); }
                catch (Exception) { return; } // the listener was closed
                client.NoDelay = true;
                Interlocked.Increment(ref s_connections);
                _ = Task.Run(() => Echo(client));
            }
        });

        var deadline = Stopwatch.StartNew();
        while (!File.Exists(readyFile + ".done"))
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(5)) throw new TimeoutException("the clients did not finish within 5 minutes");
            await Task.Delay(20);
        }
        Console.WriteLine($"{{\"messages\":{Interlocked.Read(ref s_messages)},\"connections\":{Interlocked.Read(ref s_connections)}}}");
        return 0;
    }

    private static async Task Echo(Socket client)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                if (!await ReadExactly(client, buffer.AsMemory(0, 4))) return;
                int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer);
                if (length > buffer.Length - 4) return;
                if (!await ReadExactly(client, buffer.AsMemory(4, length))) return;
                await SendAll(client, buffer.AsMemory(0, 4 + length));
                Interlocked.Increment(ref s_messages);
            }
        }
        catch (SocketException) { }
        finally
        {
            client.Dispose();
        }
    }

    // ---- the load generator ----

    private sealed class Client
    {
        public Socket Socket = null!;
        public readonly byte[] Buffer = new byte[64 * 1024];
        public int Errors;
        public string? FirstError;
        public long LastProgress = Stopwatch.GetTimestamp();
    }

    private static async Task<int> Clients(string readyFile, bool psipc, int clients, int rounds, int warmUp)
    {
        int port = await WaitForPort(readyFile);
        byte[] request = psipc ? Frame(0x10, Ping) : Length(Ping);
        var all = new List<Client>(clients);
        int connectErrors = 0;
        string? firstError = null;
        var connectClock = Stopwatch.StartNew();
        for (int i = 0; i < clients; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(ReplyTimeout);
                var client = new Client { Socket = socket };
                if (psipc) await Handshake(client);
                all.Add(client);
            }
            catch (Exception e)
            {
                socket.Dispose();
                connectErrors++;
                firstError ??= $"connect {i}: {e.Message}";
            }
        }
        connectClock.Stop();

        // A reply missing for 30 s fails that client: the watchdog closes its socket, so its pending read ends.
        using var watchdog = new Timer(_ =>
        {
            long stale = Stopwatch.GetTimestamp() - (long)(ReplyTimeout.TotalSeconds * Stopwatch.Frequency);
            foreach (Client c in all) if (c.LastProgress < stale) c.Socket.Dispose();
        }, null, 1000, 1000);
        foreach (Client c in all) c.LastProgress = Stopwatch.GetTimestamp();
        if (warmUp > 0) await Task.WhenAll(all.ConvertAll(c => Run(c, request, psipc, warmUp)));
        var clock = Stopwatch.StartNew();
        int[] done = await Task.WhenAll(all.ConvertAll(c => Run(c, request, psipc, rounds)));
        clock.Stop();
        watchdog.Change(Timeout.Infinite, Timeout.Infinite);

        foreach (Client c in all)
        {
            try
            {
                if (psipc) await SendAll(c.Socket, Frame(0x02, Array.Empty<byte>()));
                c.Socket.Shutdown(SocketShutdown.Send);
                // Wait for the server's end (EOF) so that it has seen this client go before we say we are done.
                var end = c.Socket.ReceiveAsync(c.Buffer.AsMemory(), SocketFlags.None).AsTask();
                while (await end.WaitAsync(ReplyTimeout) > 0) end = c.Socket.ReceiveAsync(c.Buffer.AsMemory(), SocketFlags.None).AsTask();
            }
            catch (Exception e) when (e is SocketException || e is TimeoutException || e is ObjectDisposedException) { }
            c.Socket.Dispose();
        }
        File.WriteAllText(readyFile + ".done", "");

        long messages = 0;
        int errors = connectErrors;
        foreach (int n in done) messages += n;
        foreach (Client c in all)
        {
            errors += c.Errors;
            firstError ??= c.FirstError;
        }
        string shown = firstError == null ? "" : $",\"firstError\":\"{firstError.Replace("\\", "\\\\").Replace("\"", "'")}\"";
        Console.WriteLine(FormattableString.Invariant(
            $"{{\"messages\":{messages},\"seconds\":{clock.Elapsed.TotalSeconds},\"errors\":{errors},\"clients\":{all.Count},\"connectSeconds\":{connectClock.Elapsed.TotalSeconds}{shown}}}"));
        return 0;
    }

    // One client's round trips; returns how many were answered correctly. A wrong or missing reply ends it.
    private static async Task<int> Run(Client client, byte[] request, bool psipc, int rounds)
    {
        int good = 0;
        try
        {
            for (int i = 0; i < rounds; i++)
            {
                await SendAll(client.Socket, request);
                ReadOnlyMemory<byte> reply = psipc ? await ReadFrame(client, expectData: true) : await ReadLengthPrefixed(client);
                if (!reply.Span.SequenceEqual(Ping)) throw new InvalidDataException($"the reply was '{Encoding.UTF8.GetString(reply.Span)}'");
                good++;
                client.LastProgress = Stopwatch.GetTimestamp();
            }
        }
        catch (Exception e)
        {
            client.Errors++;
            client.FirstError ??= e.Message;
        }
        return good;
    }

    private static async Task Handshake(Client client)
    {
        var hello = new byte[16];
        Encoding.ASCII.GetBytes("PSIPC").CopyTo(hello, 0);
        hello[5] = 1;
        BinaryPrimitives.WriteUInt32LittleEndian(hello.AsSpan(8), (uint)Environment.ProcessId);
        BinaryPrimitives.WriteUInt32LittleEndian(hello.AsSpan(12), 1024 * 1024);
        await SendAll(client.Socket, Frame(0x01, hello));
        await ReadFrame(client, expectData: false);
    }

    private static async Task<ReadOnlyMemory<byte>> ReadFrame(Client client, bool expectData)
    {
        byte[] b = client.Buffer;
        if (!await ReadExactly(client.Socket, b.AsMemory(0, 5))) throw new EndOfStreamException("the server closed the connection");
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(b);
        byte type = b[4];
        if (length > b.Length) throw new InvalidDataException($"a {length}-byte frame");
        if (!await ReadExactly(client.Socket, b.AsMemory(0, length))) throw new EndOfStreamException("the server closed the connection");
        if (type == 0x03) throw new InvalidDataException($"the server sent an Error frame: {Encoding.UTF8.GetString(b, 1, Math.Max(0, length - 1))}");
        if (expectData ? type < 0x10 : type != 0x01) throw new InvalidDataException($"unexpected frame type 0x{type:x2}");
        return b.AsMemory(0, length);
    }

    private static async Task<ReadOnlyMemory<byte>> ReadLengthPrefixed(Client client)
    {
        byte[] b = client.Buffer;
        if (!await ReadExactly(client.Socket, b.AsMemory(0, 4))) throw new EndOfStreamException("the server closed the connection");
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(b);
        if (length > b.Length) throw new InvalidDataException($"a {length}-byte message");
        if (!await ReadExactly(client.Socket, b.AsMemory(0, length))) throw new EndOfStreamException("the server closed the connection");
        return b.AsMemory(0, length);
    }

    // ---- shared ----

    private static async Task<int> WaitForPort(string readyFile)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(readyFile))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"no server published its endpoint in {readyFile} within 60 s");
            await Task.Delay(20);
        }
        string endpoint = File.ReadAllText(readyFile);
        if (!endpoint.StartsWith("tcp:", StringComparison.Ordinal)) throw new InvalidDataException($"not a TCP endpoint: {endpoint}");
        return int.Parse(endpoint.Substring(4));
    }

    private static byte[] Length(byte[] payload)
    {
        var message = new byte[4 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)payload.Length);
        payload.CopyTo(message, 4);
        return message;
    }

    private static byte[] Frame(byte type, byte[] payload)
    {
        var frame = new byte[5 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)payload.Length);
        frame[4] = type;
        payload.CopyTo(frame, 5);
        return frame;
    }

    private static async Task<bool> ReadExactly(Socket socket, Memory<byte> into)
    {
        int got = 0;
        while (got < into.Length)
        {
            int n = await socket.ReceiveAsync(into.Slice(got), SocketFlags.None);
            if (n == 0) return false;
            got += n;
        }
        return true;
    }

    private static async Task SendAll(Socket socket, ReadOnlyMemory<byte> data)
    {
        while (data.Length > 0)
        {
            int n = await socket.SendAsync(data, SocketFlags.None);
            data = data.Slice(n);
        }
    }
}
