using System;
using System.Diagnostics.CodeAnalysis;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// One message per datagram, for every framing (docs/protocol.md, section 11, "UDP"): Raw is the bytes
    /// as they are, Line the UTF-8 text (a trailing newline removed on receipt, added on sending), and
    /// LengthPrefixed exactly one PsIpc data frame whose length is the rest of the datagram. No handshake.
    /// </summary>
    internal static class UdpDatagrams
    {
        /// <summary>The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).</summary>
        public const int MaxIPv4Payload = 65507;

        /// <summary>The largest UDP payload over IPv6 (no jumbograms): 65535 - 8 (UDP header).</summary>
        public const int MaxIPv6Payload = 65527;

        /// <summary>A receive buffer that holds any datagram whole, allocated once per socket.</summary>
        public const int ReceiveBufferSize = 65536;

        /// <summary>What the kernel is asked to buffer for a socket (Linux caps it at net.core.rmem_max).</summary>
        public const int KernelReceiveBuffer = 4 * 1024 * 1024;

        /// <summary>A safety net: a datagram send never waits for a peer, only for the local send buffer.</summary>
        public static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(10);

        private static readonly byte[] NewLine = { (byte)'\n' };

        public static int MaxPayload(AddressFamily family) => family == AddressFamily.InterNetworkV6 ? MaxIPv6Payload : MaxIPv4Payload;

        /// <summary>The largest message that always fits one datagram with this framing (Line: one that needs its newline added).</summary>
        public static int MaxMessage(AddressFamily family, SocketFraming framing) =>
            MaxPayload(family) - (framing == SocketFraming.LengthPrefixed ? FrameHeader.Size : framing == SocketFraming.Line ? 1 : 0);

        /// <summary>One message as one datagram.</summary>
        /// <exception cref="IpcException">MessageTooLarge: it does not fit a datagram (nothing is sent).</exception>
        public static byte[] Encode(OutgoingFrame frame, SocketFraming framing, AddressFamily family, string channelName)
        {
            byte[] payload = frame.Payload;
            bool addNewLine = framing == SocketFraming.Line && (payload.Length == 0 || payload[payload.Length - 1] != (byte)'\n');
            int overhead = framing == SocketFraming.LengthPrefixed ? FrameHeader.Size : addNewLine ? 1 : 0;
            int limit = MaxPayload(family);
            if (payload.Length > limit - overhead)
            {
                throw new IpcException(IpcErrorKind.MessageTooLarge,
                    $"A message of {payload.Length} bytes does not fit one UDP datagram of '{channelName}' ({framing} framing: at most {limit - overhead} bytes); " +
                    "nothing was sent. Send large messages over TCP or a Unix socket.", channelName);
            }
            switch (framing)
            {
                case SocketFraming.Raw:
                    return payload;
                case SocketFraming.Line:
                    return addNewLine ? Concat(payload, NewLine) : payload;
                default:
                    return FrameHeader.Frame(frame.Type, payload);
            }
        }

        private static byte[] Concat(byte[] a, byte[] b)
        {
            var all = new byte[a.Length + b.Length];
            Buffer.BlockCopy(a, 0, all, 0, a.Length);
            Buffer.BlockCopy(b, 0, all, a.Length, b.Length);
            return all;
        }

        /// <summary>
        /// Cuts the message out of a datagram of <paramref name="count"/> bytes. True with
        /// <paramref name="payload"/> set on success; otherwise false with the reason the datagram is dropped
        /// in <paramref name="invalid"/> (ProtocolError, MessageTooLarge). Sizes are checked before the payload is copied.
        /// </summary>
        public static bool TryDecode(byte[] buffer, int count, SocketFraming framing, int maxMessageSize, string channelName, string from,
            out MessageFormat format, [NotNullWhen(true)] out byte[]? payload, [NotNullWhen(false)] out IpcException? invalid)
        {
            payload = null;
            invalid = null;
            format = MessageFormat.Bytes;
            int offset = 0, length = count;
            switch (framing)
            {
                case SocketFraming.Raw:
                    break;
                case SocketFraming.Line:
                    format = MessageFormat.Text;
                    if (length > 0 && buffer[length - 1] == (byte)'\n')
                    {
                        length--;
                        if (length > 0 && buffer[length - 1] == (byte)'\r') length--;
                    }
                    break;
                default:
                    if (count < FrameHeader.Size)
                    {
                        invalid = new IpcException(IpcErrorKind.ProtocolError,
                            $"A datagram of {count} bytes from {from} to '{channelName}' is shorter than a PsIpc frame header (5 bytes); it was dropped.", channelName);
                        return false;
                    }
                    uint announced = FrameHeader.ReadLength(buffer, 0);
                    var type = (FrameType)buffer[4];
                    if (announced != (uint)(count - FrameHeader.Size))
                    {
                        invalid = new IpcException(IpcErrorKind.ProtocolError,
                            $"A datagram from {from} to '{channelName}' announces a {announced}-byte payload but carries {count - FrameHeader.Size} bytes; " +
                            "with LengthPrefixed framing a datagram holds exactly one frame. It was dropped.", channelName);
                        return false;
                    }
                    if (!FrameTypes.IsData(type))
                    {
                        invalid = new IpcException(IpcErrorKind.ProtocolError,
                            $"A datagram from {from} to '{channelName}' has frame type 0x{(byte)type:x2}; over UDP only data frames (0x10-0x13) are valid. It was dropped.", channelName);
                        return false;
                    }
                    format = (MessageFormat)type;
                    offset = FrameHeader.Size;
                    length = count - FrameHeader.Size;
                    break;
            }
            if (length > maxMessageSize)
            {
                invalid = new IpcException(IpcErrorKind.MessageTooLarge,
                    $"A datagram from {from} to '{channelName}' carries a {length}-byte message; the maximum is {maxMessageSize} bytes (-MaxMessageSize). It was dropped.", channelName);
                return false;
            }
            payload = new byte[length];
            Buffer.BlockCopy(buffer, offset, payload, 0, length);
            return true;
        }

        /// <summary>A UDP socket bound to the address and port (0: a free port).</summary>
        /// <exception cref="IpcException">AddressInUse, ConnectFailed.</exception>
        public static Socket Bind(IPAddress address, int port, string name)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                if (UnixNative.IsWindows) PrepareWindows(socket);
                socket.Bind(new IPEndPoint(address, port));
                Tune(socket);
                return socket;
            }
            catch (SocketException e)
            {
                socket.Dispose();
                if (e.SocketErrorCode == SocketError.AddressAlreadyInUse || e.SocketErrorCode == SocketError.AccessDenied && port != 0)
                {
                    throw new IpcException(IpcErrorKind.AddressInUse,
                        $"The UDP port {port} on {address} is already in use by another program. Choose another -Port, or -Port 0 for a free one.", name, e);
                }
                throw new IpcException(IpcErrorKind.ConnectFailed, $"Cannot bind UDP {address} port {port}: {e.Message}", name, e);
            }
        }

        // Windows only: a port of its own (as TCP listeners), and no WSAECONNRESET on the server's socket when a
        // peer it answered has gone (an ICMP port unreachable for one peer must not disturb the others).
        private static void PrepareWindows(Socket socket)
        {
            socket.ExclusiveAddressUse = true;
            const int SIO_UDP_CONNRESET = unchecked((int)0x9800000C);
            socket.IOControl(SIO_UDP_CONNRESET, new byte[4], null);
        }

        /// <summary>A UDP socket connected to the first address of <paramref name="host"/> (IPv4 first).</summary>
        /// <exception cref="IpcException">HostNotFound, ConnectTimeout, ConnectFailed.</exception>
        public static Socket Connect(string host, int port, string name, Deadline deadline, CancellationToken cancellationToken)
        {
            IPAddress address = Resolve(host, name, deadline, cancellationToken);
            var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                // connect() on UDP sends nothing: it fixes the peer, so that only its datagrams are received
                // and an ICMP "port unreachable" for what we sent comes back as ECONNREFUSED.
                socket.Connect(new IPEndPoint(address, port));
                Tune(socket);
                return socket;
            }
            catch (SocketException e)
            {
                socket.Dispose();
                throw new IpcException(IpcErrorKind.ConnectFailed, $"Cannot set up UDP to {host} port {port}: {e.Message}", name, e);
            }
        }

        private static void Tune(Socket socket)
        {
            try { socket.ReceiveBufferSize = KernelReceiveBuffer; } catch (SocketException) { } // best effort: the kernel may cap it
            socket.SendTimeout = (int)SendTimeout.TotalMilliseconds;
        }

        private static IPAddress Resolve(string host, string name, Deadline deadline, CancellationToken cancellationToken)
        {
            if (IPAddress.TryParse(host, out IPAddress literal)) return literal;
            if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback; // a server binds 127.0.0.1 by default
            Task<IPAddress[]> lookup = Dns.GetHostAddressesAsync(host);
            try
            {
                if (!lookup.Wait(deadline.IsInfinite ? Timeout.Infinite : Math.Max(deadline.RemainingMilliseconds, 1000), cancellationToken))
                {
                    lookup.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
                    throw new IpcException(IpcErrorKind.ConnectTimeout, $"Timed out looking up the host '{host}'.", name);
                }
            }
            catch (AggregateException e) when (e.InnerException is SocketException se)
            {
                throw new IpcException(IpcErrorKind.HostNotFound, $"The host '{host}' was not found: {se.Message}", name, se);
            }
            IPAddress found = lookup.Result.OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).FirstOrDefault();
            return found ?? throw new IpcException(IpcErrorKind.HostNotFound, $"The host '{host}' has no address.", name);
        }

        /// <summary>ip:port, with brackets around an IPv6 address.</summary>
        public static string Format(IPEndPoint endPoint) => $"{SocketServerChannel.FormatAddress(endPoint.Address)}:{endPoint.Port}";

        /// <summary>True for the errors a blocked receive returns when its timeout passed (the loop looks at the channel and goes on).</summary>
        public static bool IsReceiveTimeout(SocketException e) =>
            e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock;

        /// <summary>An ICMP "port unreachable" for an earlier datagram: ECONNREFUSED on Unix, WSAECONNRESET on Windows.</summary>
        public static bool IsRefusal(SocketException e) =>
            e.SocketErrorCode == SocketError.ConnectionRefused || e.SocketErrorCode == SocketError.ConnectionReset;
    }
}
