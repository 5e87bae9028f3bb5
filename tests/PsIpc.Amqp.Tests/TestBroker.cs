using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.IO;
using System.Text.Json;
using System.Threading.Tasks;
using PsIpc.Amqp;
using PsIpc.Transport;
using RabbitMQ.Client;

namespace PsIpc.Amqp.Tests
{
    /// <summary>
    /// The broker build.ps1 Test started (build/RabbitMqBroker.psm1), read from the broker.json that
    /// $env:PSIPC_RABBITMQ_STATE names; by hand, the dev broker the Pester queue tests leave running
    /// (output/rabbitmq/dev). No broker is a failure with what to do, never a skip.
    /// </summary>
    public sealed class TestBroker
    {
        private static readonly Lazy<TestBroker> s_instance = new Lazy<TestBroker>(Load);

        public static TestBroker Instance => s_instance.Value;

        public int Port { get; private set; }
        public int TlsPort { get; private set; }
        public string Uri { get; private set; } = string.Empty;
        public string TlsUri { get; private set; } = string.Empty;
        public string CertificateThumbprint { get; private set; } = string.Empty;
        public string NodeName { get; private set; } = string.Empty;
        private Dictionary<string, string> NodeEnvironment { get; set; } = new Dictionary<string, string>();

        private static TestBroker Load()
        {
            string? state = Environment.GetEnvironmentVariable("PSIPC_RABBITMQ_STATE");
            if (state != null && state.StartsWith("unavailable:", StringComparison.Ordinal))
            {
                throw new InvalidOperationException("No RabbitMQ broker for the queue tests: " + state.Substring(12).Trim());
            }
            if (string.IsNullOrEmpty(state))
            {
                string dir = AppContext.BaseDirectory;
                while (dir != null && !File.Exists(Path.Combine(dir, "PsIpc.psd1"))) dir = Path.GetDirectoryName(dir)!;
                state = dir == null ? null : Path.Combine(dir, "output", "rabbitmq", "dev", "broker.json");
            }
            if (state == null || !File.Exists(state))
            {
                throw new InvalidOperationException(
                    "No RabbitMQ broker: run the tests with 'dotnet pwsh -File ./build.ps1 Test' (it starts one), or start one with " +
                    "Import-Module ./build/RabbitMqBroker.psm1; Start-RabbitMqBroker -Directory output/rabbitmq/dev");
            }
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(state));
            JsonElement root = doc.RootElement;
            return new TestBroker
            {
                Port = root.GetProperty("Port").GetInt32(),
                TlsPort = root.GetProperty("TlsPort").GetInt32(),
                Uri = root.GetProperty("Uri").GetString()!,
                TlsUri = root.GetProperty("TlsUri").GetString()!,
                CertificateThumbprint = root.GetProperty("CertificateThumbprint").GetString()!,
                NodeName = root.GetProperty("NodeName").GetString()!,
                NodeEnvironment = root.GetProperty("Environment").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? string.Empty),
            };
        }

        /// <summary>Messages of the queue delivered and not acknowledged (rabbitmqctl: AMQP cannot tell).</summary>
        public int Unacknowledged(string queue)
        {
            var psi = new ProcessStartInfo("/usr/lib/rabbitmq/bin/rabbitmqctl")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (string a in new[] { "-n", NodeName, "-q", "list_queues", "name", "messages_unacknowledged", "--no-table-headers" }) psi.ArgumentList.Add(a);
            foreach (string key in new[] { "HOME", "ERL_EPMD_PORT" }) psi.Environment[key] = NodeEnvironment[key];
            using Process ctl = Process.Start(psi)!;
            Task<string> errors = ctl.StandardError.ReadToEndAsync();
            string output = ctl.StandardOutput.ReadToEnd();
            ctl.WaitForExit();
            if (ctl.ExitCode != 0) throw new InvalidOperationException($"rabbitmqctl failed ({ctl.ExitCode}): {errors.Result}");
            foreach (string line in output.Split('\n'))
            {
                string[] columns = line.Trim().Split('\t');
                if (columns.Length == 2 && columns[0] == queue) return int.Parse(columns[1]);
            }
            throw new InvalidOperationException($"rabbitmqctl does not list the queue {queue}: {output}");
        }

        public static string UniqueName(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N").Substring(0, 8);

        public AmqpQueueOptions Options(string? queue = null, string? exchange = null) =>
            new AmqpQueueOptions { Uri = Uri, Queue = queue, Exchange = exchange };

        public AmqpQueueChannel Connect(AmqpQueueOptions options) =>
            AmqpQueueChannel.Connect(options, Deadline.After(TimeSpan.FromSeconds(30)), default);

        /// <summary>How many messages the broker holds in <paramref name="queue"/> (a passive declare, through <see cref="RawAsync"/>).</summary>
        public async Task<uint> MessageCountAsync(string queue)
        {
            (IConnection connection, IChannel channel) = await RawAsync();
            await using (connection)
            await using (channel)
            {
                return (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
            }
        }

        /// <summary>A plain RabbitMQ.Client connection: the tests' own view of the broker.</summary>
        public async Task<(IConnection, IChannel)> RawAsync()
        {
            var factory = new ConnectionFactory { Uri = new System.Uri(Uri) };
            IConnection connection = await factory.CreateConnectionAsync();
            IChannel channel = await connection.CreateChannelAsync();
            return (connection, channel);
        }
    }
}
