using System;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PsIpc.Transport.Platform
{
    /// <summary>
    /// A Unix domain socket address (sockaddr_un). netstandard2.0 has no UnixDomainSocketEndPoint, and the
    /// runtime only needs Serialize/Create, so this small class stands in for it on every .NET.
    /// </summary>
    internal sealed class UnixEndPoint : EndPoint
    {
        private const int PathOffset = 2; // sa_family_t comes first (Linux and macOS alike for SocketAddress)

        public UnixEndPoint(string path)
        {
            Path = path ?? throw new ArgumentNullException(nameof(path));
        }

        public string Path { get; }

        public override AddressFamily AddressFamily => AddressFamily.Unix;

        public override SocketAddress Serialize()
        {
            byte[] bytes = Encoding.UTF8.GetBytes(Path);
            var address = new SocketAddress(AddressFamily.Unix, PathOffset + bytes.Length + 1);
            for (int i = 0; i < bytes.Length; i++) address[PathOffset + i] = bytes[i];
            address[PathOffset + bytes.Length] = 0;
            return address;
        }

        public override EndPoint Create(SocketAddress socketAddress)
        {
            int length = socketAddress.Size - PathOffset;
            var bytes = new byte[Math.Max(0, length)];
            int used = 0;
            for (; used < bytes.Length; used++)
            {
                byte b = socketAddress[PathOffset + used];
                if (b == 0) break;
                bytes[used] = b;
            }
            return new UnixEndPoint(Encoding.UTF8.GetString(bytes, 0, used));
        }

        public override string ToString() => Path;
    }
}
