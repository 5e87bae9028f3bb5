using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.FaultPeer
{
    /// <summary>
    /// The process that is killed: it sends or receives a stream until kill -9 and prints, after the fact,
    /// what it saw: "acked N" once messages up to N were acknowledged (see Driver), "got N" for each message it
    /// received whole. Each line is one write to a pipe, so a line printed before the kill reaches the driver.
    /// </summary>
    internal static class Peer
    {
        // peer <transport> <send|receive|serve-send|serve-receive> <address> <seed>
        public static int Run(string[] args)
        {
            string transport = args[1], role = args[2], address = args[3];
            var random = new Random(int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture));
            var output = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
            IpcChannel channel;
            if (role.StartsWith("serve-", StringComparison.Ordinal))
            {
                channel = Endpoints.Listen(transport, address);
                output.WriteLine("ready " + Endpoints.AddressOf(transport, channel));
            }
            else
            {
                channel = Endpoints.Connect(transport, address);
                output.WriteLine("ready");
            }
            try
            {
                if (role.EndsWith("send", StringComparison.Ordinal)) Send(channel, transport, random, output);
                else Receive(channel, output);
            }
            catch (IpcException e)
            {
                output.WriteLine("error " + e.Kind);
            }
            return 0;
        }

        private static void Send(IpcChannel channel, string transport, Random random, StreamWriter output)
        {
            int seq = 0;
            while (seq < 10_000_000)
            {
                int batch = random.Next(1, 9);
                for (int i = 0; i < batch; i++)
                {
                    seq++;
                    channel.Send(MessageFormat.Bytes, Endpoints.Message(seq, random, transport == "queue"), Endpoints.Within(60), CancellationToken.None);
                }
                // Pipes and sockets: Flush returns once the frames were written to the system (docs/security.md).
                // A queue's Send returns once the record is in the ring; its Flush has nothing left to do.
                channel.Flush(Endpoints.Within(60), CancellationToken.None);
                output.WriteLine("acked " + seq);
            }
        }

        private static void Receive(IpcChannel channel, StreamWriter output)
        {
            var batch = new List<IpcMessage>();
            while (true)
            {
                batch.Clear();
                int n = channel.Receive(batch, 16, Endpoints.Within(60), CancellationToken.None);
                if (n < 0) { output.WriteLine("end"); return; }
                foreach (IpcMessage m in batch)
                {
                    if (m.Fault != null) { output.WriteLine("error " + m.Fault.Kind); return; }
                    int seq = Endpoints.Check(m.Payload);
                    output.WriteLine(seq < 0 ? "damaged" : "got " + seq);
                }
            }
        }
    }
}
