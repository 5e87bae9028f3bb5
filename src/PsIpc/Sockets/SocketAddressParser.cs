using System.Net;
using PsIpc.Transport;

namespace PsIpc.Sockets
{
    internal static class SocketAddressParser
    {
        /// <summary>An IP address or "localhost" (127.0.0.1); anything else is an argument error.</summary>
        public static IPAddress Parse(string address)
        {
            if (string.Equals(address, "localhost", System.StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
            if (IPAddress.TryParse(address, out IPAddress parsed)) return parsed;
            throw new System.ArgumentException($"'{address}' is not an IP address. -Address takes an address of this machine, such as 127.0.0.1 or ::1.");
        }
    }
}
