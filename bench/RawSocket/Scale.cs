// The load generator of the scale row (bench/lib/BenchScale.ps1, issue 12 item 4):
//
//   dotnet RawSocket.dll scale <readyFile> <clients> <rounds> <idlePercent> <slowPercent>
//
// Waits for <readyFile> (tcp:<port>), then connects <clients> PsIpc clients (TCP, Hello exchange; at most 64
// connects in flight), and writes "<readyFile>.connected" once all are in. Then, all at once:
//   - active clients do <rounds> round trips each (a Text frame "c<i> r<k>", the echo checked), timed together:
//     the trips/s figure;
//   - slow clients do <rounds> round trips each too, but send each request in two writes 200 ms apart and read the
//     reply 200 ms after the request went out (a slow writer and a slow reader);
//   - idle clients do nothing until the active and slow ones are done, then one round trip each (proof that the
//     server kept them).
// Every client then says Goodbye and waits for the server's end of stream; "<readyFile>.done" is written and one JSON
// line printed: {"messages" (active trips), "seconds", "errors", "clients", "connectSeconds", "slowTrips",
// "idleTrips", "firstError"}. Any wrong or missing reply (30 s) is an error.
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

internal static class Scale
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan SlowPause = TimeSpan.FromMilliseconds(200);

    private sealed class Peer
    {
        public Socket Socket = null!;
        public readonly byte[] Buffer = new byte[4096];
        public int Errors;
        public string? FirstError;
        public int Trips;
    }

    public static async Task<int> Run(string readyFile, int clients, int rounds, int idlePercent, int slowPercent)
    {
        int port = await WaitForPort(readyFile);
        var peers = new Peer?[clients];
        int connectErrors = 0;
        string? firstError = null;
        var connectClock = Stopwatch.StartNew();
        using (var inFlight = new SemaphoreSlim(64))
        {
            var connecting = new List<Task>(clients);
            for (int i = 0; i < clients; i++)
            {
                await inFlight.WaitAsync();
                int index = i;
                connecting.Add(Task.Run(async () =>
                {
                    var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    try
                    {
                        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(ReplyTimeout);
                        var peer = new Peer { Socket = socket };
                        await Handshake(peer).WaitAsync(ReplyTimeout);
                        peers[index] = peer;
                    }
                    catch (Exception e)
                    {
                        socket.Dispose();
                        Interlocked.Increment(ref connectErrors);
                        Interlocked.CompareExchange(ref firstError, $"connect {index}: {e.Message}", null);
                    }
                    finally
                    {
                        inFlight.Release();
                    }
                }));
            }
            await Task.WhenAll(connecting);
        }
        connectClock.Stop();
        File.WriteAllText(readyFile + ".connected", "");

        var active = new List<(Peer Peer, int Index)>();
        var slow = new List<(Peer Peer, int Index)>();
        var idle = new List<(Peer Peer, int Index)>();
        for (int i = 0; i < clients; i++)
        {
            Peer? p = peers[i];
            if (p == null) continue;
            int bucket = i % 100; // spread the kinds over the connection order
            if (bucket < idlePercent) idle.Add((p, i));
            else if (bucket < idlePercent + slowPercent) slow.Add((p, i));
            else active.Add((p, i));
        }

        var clock = Stopwatch.StartNew();
        Task slowDone = Task.WhenAll(slow.ConvertAll(s => Trips(s.Peer, s.Index, rounds, slowly: true)));
        await Task.WhenAll(active.ConvertAll(a => Trips(a.Peer, a.Index, rounds, slowly: false)));
        clock.Stop();
        await slowDone;
        await Task.WhenAll(idle.ConvertAll(s => Trips(s.Peer, s.Index, 1, slowly: false)));

        await Task.WhenAll(Array.ConvertAll(peers, p => p == null ? Task.CompletedTask : Leave(p)));
        File.WriteAllText(readyFile + ".done", "");

        long activeTrips = 0, slowTrips = 0, idleTrips = 0;
        int errors = connectErrors;
        foreach (var a in active) activeTrips += a.Peer.Trips;
        foreach (var s in slow) slowTrips += s.Peer.Trips;
        foreach (var s in idle) idleTrips += s.Peer.Trips;
        foreach (Peer? p in peers)
        {
            if (p == null) continue;
            errors += p.Errors;
            firstError ??= p.FirstError;
        }
        string shown = firstError == null ? "" : $",\"firstError\":\"{firstError.Replace("\\", "\\\\").Replace("\"", "'")}\"";
        Console.WriteLine(FormattableString.Invariant(
            $"{{\"messages\":{activeTrips},\"seconds\":{clock.Elapsed.TotalSeconds},\"errors\":{errors},\"clients\":{clients},\"connected\":{active.Count + slow.Count + idle.Count},\"connectSeconds\":{connectClock.Elapsed.TotalSeconds},\"slowTrips\":{slowTrips},\"idleTrips\":{idleTrips}{shown}}}"));
        return 0;
    }

    private static async Task Trips(Peer peer, int index, int rounds, bool slowly)
    {
        try
        {
            for (int r = 0; r < rounds; r++)
            {
                byte[] text = Encoding.ASCII.GetBytes($"c{index} r{r}");
                byte[] request = Frame(0x10, text);
                if (slowly)
                {
                    int half = request.Length / 2;
                    await SendAll(peer.Socket, request.AsMemory(0, half));
                    await Task.Delay(SlowPause);
                    await SendAll(peer.Socket, request.AsMemory(half));
                    await Task.Delay(SlowPause);
                }
                else
                {
                    await SendAll(peer.Socket, request);
                }
                ReadOnlyMemory<byte> reply = await ReadFrame(peer, expectData: true).WaitAsync(ReplyTimeout);
                if (!reply.Span.SequenceEqual(text)) throw new InvalidDataException($"client {index}: the reply to 'c{index} r{r}' was '{Encoding.UTF8.GetString(reply.Span)}'");
                peer.Trips++;
            }
        }
        catch (Exception e)
        {
            peer.Errors++;
            peer.FirstError ??= $"client {index}: {e.Message}";
        }
    }

    // Goodbye, then wait for the server's end of stream, so the server has seen this client go before "done".
    private static async Task Leave(Peer peer)
    {
        try
        {
            await SendAll(peer.Socket, Frame(0x02, Array.Empty<byte>()));
            peer.Socket.Shutdown(SocketShutdown.Send);
            while (await peer.Socket.ReceiveAsync(peer.Buffer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(ReplyTimeout) > 0)
            {
            }
        }
        catch (Exception e) when (e is SocketException || e is TimeoutException || e is ObjectDisposedException)
        {
        }
        peer.Socket.Dispose();
    }

    private static async Task Handshake(Peer peer)
    {
        var hello = new byte[16];
        Encoding.ASCII.GetBytes("PSIPC").CopyTo(hello, 0);
        hello[5] = 1;
        BinaryPrimitives.WriteUInt32LittleEndian(hello.AsSpan(8), (uint)Environment.ProcessId);
        BinaryPrimitives.WriteUInt32LittleEndian(hello.AsSpan(12), 1024 * 1024);
        await SendAll(peer.Socket, Frame(0x01, hello));
        await ReadFrame(peer, expectData: false);
    }

    private static async Task<ReadOnlyMemory<byte>> ReadFrame(Peer peer, bool expectData)
    {
        byte[] b = peer.Buffer;
        if (!await ReadExactly(peer.Socket, b.AsMemory(0, 5))) throw new EndOfStreamException("the server closed the connection");
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(b);
        byte type = b[4];
        if (length > b.Length) throw new InvalidDataException($"a {length}-byte frame");
        if (!await ReadExactly(peer.Socket, b.AsMemory(0, length))) throw new EndOfStreamException("the server closed the connection");
        if (type == 0x03) throw new InvalidDataException($"the server sent an Error frame: {Encoding.UTF8.GetString(b, 1, Math.Max(0, length - 1))}");
        if (expectData ? type < 0x10 : type != 0x01) throw new InvalidDataException($"unexpected frame type 0x{type:x2}");
        return b.AsMemory(0, length);
    }

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
