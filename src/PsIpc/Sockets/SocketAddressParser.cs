using System;
using System.Management.Automation;
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

        /// <summary>
        /// A Unix socket's -Path as a file system path, relative to the current location. A path of another provider
        /// (Env:, a registry drive) or of a drive that does not exist names no file a socket could be bound to.
        /// </summary>
        /// <exception cref="IpcException">SocketPathInvalid.</exception>
        public static string ResolvePath(SessionState sessionState, string path)
        {
            if (path.IndexOf('\0') >= 0)
            {
                throw new IpcException(IpcErrorKind.SocketPathInvalid, "-Path contains a NUL character, which no file name can hold.", path);
            }
            string resolved;
            ProviderInfo? provider;
            try
            {
                resolved = sessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out provider, out _);
            }
            catch (Exception e) when (e is RuntimeException || e is NotSupportedException || e is ArgumentException)
            {
                // DriveNotFoundException, ProviderNotFoundException, ProviderInvocationException...
                throw new IpcException(IpcErrorKind.SocketPathInvalid, $"-Path '{path}' is not a file system path: {e.Message}", path, e);
            }
            if (!string.Equals(provider?.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
            {
                throw new IpcException(IpcErrorKind.SocketPathInvalid,
                    $"-Path '{path}' is a path of the {provider?.Name} provider; a Unix socket needs a file system path.", path);
            }
            return resolved;
        }
    }
}
