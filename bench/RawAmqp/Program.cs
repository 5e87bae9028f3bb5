// RabbitMQ.Client 7.2.2 producer without PowerShell, for the queue rows of bench/Invoke-Bench.ps1:
//
//     RawAmqp produce <uri> <queue> <count> confirm|noconfirm [transient]
//
// Declares the queue as Connect-IpcQueue does (durable, no arguments), builds <count> 16-byte strings,
// then, on the clock, publishes each as a persistent text/plain message with an awaited BasicPublishAsync
// and closes the connection. With confirms it uses the client's own confirm tracking: 256 publishes in
// flight, then their confirms awaited (the window PsIpc keeps by default). Prints one JSON line.
// "transient" (a diagnosis, never a bench row: other semantics) declares the queue non-durable and
// publishes transient messages (delivery mode 1): what the broker costs without writing messages to disk.
using System;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Threading.Tasks;
using RabbitMQ.Client;

internal static class Program
{
    private const int Window = 256;

    private static async Task<int> Main(string[] args)
    {
        if (args.Length < 5 || args.Length > 6 || args[0] != "produce" || (args[4] != "confirm" && args[4] != "noconfirm")
            || (args.Length == 6 && args[5] != "transient"))
        {
            Console.Error.WriteLine("usage: RawAmqp produce <uri> <queue> <count> confirm|noconfirm [transient]");
            return 2;
        }
        bool durable = args.Length == 5;
        string queue = args[2];
        int count = int.Parse(args[3], CultureInfo.InvariantCulture);
        bool confirm = args[4] == "confirm";
        var bodies = new byte[count][];
        for (int i = 0; i < count; i++) bodies[i] = Encoding.UTF8.GetBytes("msg-" + i.ToString("D12", CultureInfo.InvariantCulture));

        // The close waits for the broker to have read everything before it: far beyond the client's 20 s default
        // when the broker lags behind on a loaded machine.
        var factory = new ConnectionFactory { Uri = new Uri(args[1]), ContinuationTimeout = TimeSpan.FromMinutes(5) };
        IConnection connection = await factory.CreateConnectionAsync();
        IChannel channel = await connection.CreateChannelAsync(new CreateChannelOptions(confirm, confirm));
        await channel.QueueDeclareAsync(queue, durable: durable, exclusive: false, autoDelete: false);
        var properties = new BasicProperties
        {
            ContentType = "text/plain; charset=utf-8",
            DeliveryMode = durable ? DeliveryModes.Persistent : DeliveryModes.Transient,
        };

        var process = Process.GetCurrentProcess();
        TimeSpan cpu = process.TotalProcessorTime;
        var stopwatch = Stopwatch.StartNew();
        if (confirm)
        {
            var inFlight = new Task[Window];
            for (int start = 0; start < count; start += Window)
            {
                int n = Math.Min(Window, count - start);
                for (int i = 0; i < n; i++) inFlight[i] = channel.BasicPublishAsync(string.Empty, queue, false, properties, bodies[start + i]).AsTask();
                await Task.WhenAll((System.Collections.Generic.IEnumerable<Task>)new ArraySegment<Task>(inFlight, 0, n));
            }
        }
        else
        {
            for (int i = 0; i < count; i++) await channel.BasicPublishAsync(string.Empty, queue, false, properties, bodies[i]);
        }
        await channel.CloseAsync();
        await connection.CloseAsync();
        stopwatch.Stop();
        process.Refresh();
        Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
            "{{\"mode\": \"produce-{0}{5}\", \"messages\": {1}, \"seconds\": {2}, \"bytes\": {3}, \"cpuSeconds\": {4}}}",
            args[4], count, stopwatch.Elapsed.TotalSeconds, 16L * count, (process.TotalProcessorTime - cpu).TotalSeconds, durable ? "" : "-transient"));
        return 0;
    }
}
