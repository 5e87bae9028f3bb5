using System;
using System.Buffers.Binary;
using System.Net;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.SharedMemory;
using PsIpc.Transport.Sockets;

namespace PsIpc.FaultPeer
{
    /// <summary>How each transport's ends are made, and the numbered, self-checking messages of a stream.</summary>
    internal static class Endpoints
    {
        public const long QueueCapacity = 256 * 1024;

        public static Deadline Within(double seconds) => Deadline.After(TimeSpan.FromSeconds(seconds));

        /// <summary>A server (pipe, tcp, unix) or a new queue; <paramref name="address"/>: a pipe name, a socket path, a queue name ("0" for tcp).</summary>
        public static IpcChannel Listen(string transport, string address) => transport switch
        {
            "pipe" => new PipeServerChannel(address, 1, null),
            "tcp" => SocketServerChannel.ListenTcp(null, IPAddress.Loopback, int.Parse(address, System.Globalization.CultureInfo.InvariantCulture), SocketFraming.LengthPrefixed, 1, null),
            "unix" => SocketServerChannel.ListenUnix(null, address, SocketFraming.LengthPrefixed, 1, null),
            "queue" => SharedMemoryChannel.Create(address, QueueCapacity, queue: true),
            _ => throw new ArgumentException("unknown transport " + transport),
        };

        /// <summary>What a client gives to <see cref="Connect"/>: the pipe name, the port, the path or the queue name.</summary>
        public static string AddressOf(string transport, IpcChannel server) => transport switch
        {
            "tcp" => ((SocketServerChannel)server).Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "unix" => ((SocketServerChannel)server).Path!,
            _ => server.Name,
        };

        public static IpcChannel Connect(string transport, string address) => transport switch
        {
            "pipe" => PipeClientChannel.Connect(address, Within(30), CancellationToken.None),
            "tcp" => SocketClientChannel.ConnectTcp("127.0.0.1", int.Parse(address, System.Globalization.CultureInfo.InvariantCulture), SocketFraming.LengthPrefixed, Within(30), CancellationToken.None),
            "unix" => SocketClientChannel.ConnectUnix(address, SocketFraming.LengthPrefixed, Within(30), CancellationToken.None),
            "queue" => SharedMemoryChannel.Open(address),
            _ => throw new ArgumentException("unknown transport " + transport),
        };

        /// <summary>Message <paramref name="seq"/>: its number, its length, then bytes that follow from both (any damage shows).</summary>
        public static byte[] Message(int seq, Random random, bool small)
        {
            int extra = small ? random.Next(512) : random.Next(4) == 0 ? random.Next(64 * 1024) : random.Next(256);
            var bytes = new byte[8 + extra];
            BinaryPrimitives.WriteInt32LittleEndian(bytes, seq);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), bytes.Length);
            for (int i = 8; i < bytes.Length; i++) bytes[i] = (byte)(seq * 31 + i);
            return bytes;
        }

        /// <summary>The message's number, or -1 when it is damaged.</summary>
        public static int Check(byte[] bytes)
        {
            if (bytes.Length < 8 || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)) != bytes.Length) return -1;
            int seq = BinaryPrimitives.ReadInt32LittleEndian(bytes);
            for (int i = 8; i < bytes.Length; i++)
            {
                if (bytes[i] != (byte)(seq * 31 + i)) return -1;
            }
            return seq;
        }
    }
}
