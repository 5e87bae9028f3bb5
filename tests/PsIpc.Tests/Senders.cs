using System;
using System.Collections.Generic;
using System.Net;
using System.Text;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;
using Xunit;

namespace PsIpc.Tests
{
    /// <summary>
    /// Real channel pairs of each transport, so that a message arrives with the sender a receiving cmdlet would
    /// see (a pipe's peer, a TCP connection with or without the shared secret, a UDP peer). Whether CliXml is
    /// decoded depends on that sender, so the tests give the codec messages that really came over the wire.
    /// </summary>
    public sealed class Senders : IDisposable
    {
        /// <summary>How long a wait for something that should happen at once may take before the test gives up:
        /// a safety net against hangs, never an assertion about speed.</summary>
        public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

        private readonly List<IpcChannel> _open = new List<IpcChannel>();
        private readonly Lazy<Pair> _pipe;
        private readonly Lazy<Pair> _tcp;
        private readonly Lazy<Pair> _tcpWithSecret;
        private readonly Lazy<Pair> _udp;

        public Senders()
        {
            _pipe = new Lazy<Pair>(() =>
            {
                string name = "psipct" + Guid.NewGuid().ToString("N").Substring(0, 12);
                IpcChannel server = Keep(new PipeServerChannel(name, 1, new ChannelOptions()));
                IpcChannel client = Keep(PipeClientChannel.Connect(name, Deadline.After(Patience), CancellationToken.None));
                return new Pair(server, client);
            });
            _tcp = new Lazy<Pair>(() => Tcp(null));
            _tcpWithSecret = new Lazy<Pair>(() => Tcp(new SocketSecurity { Secret = Encoding.UTF8.GetBytes("a test secret of more than sixteen characters") }));
            _udp = new Lazy<Pair>(() =>
            {
                var server = (UdpServerChannel)Keep(UdpServerChannel.Listen(null, IPAddress.Loopback, 0, SocketFraming.LengthPrefixed, 16, new ChannelOptions()));
                IpcChannel client = Keep(UdpClientChannel.Connect("127.0.0.1", server.Port, SocketFraming.LengthPrefixed, Deadline.After(Patience), CancellationToken.None));
                return new Pair(server, client);
            });
        }

        /// <summary>A pipe client's message, as the pipe server receives it (sender: the server's peer).</summary>
        public IpcMessage FromPipe(MessageFormat format, byte[] payload) => Deliver(_pipe.Value, format, payload);

        /// <summary>A message from a TCP client that proved no secret (an unauthenticated network peer).</summary>
        public IpcMessage FromUnauthenticatedTcp(MessageFormat format, byte[] payload) => Deliver(_tcp.Value, format, payload);

        /// <summary>A message from a TCP client that proved the server's shared secret over loopback.</summary>
        public IpcMessage FromTcpWithSecret(MessageFormat format, byte[] payload) => Deliver(_tcpWithSecret.Value, format, payload);

        /// <summary>A datagram's message, as the UDP server receives it (UDP is never authenticated).</summary>
        public IpcMessage FromUdp(MessageFormat format, byte[] payload) => Deliver(_udp.Value, format, payload);

        private Pair Tcp(SocketSecurity? security)
        {
            var server = (SocketServerChannel)Keep(SocketServerChannel.ListenTcp(null, IPAddress.Loopback, 0, SocketFraming.LengthPrefixed, 16, new ChannelOptions(), security));
            IpcChannel client = Keep(SocketClientChannel.ConnectTcp("127.0.0.1", server.Port, SocketFraming.LengthPrefixed,
                Deadline.After(Patience), CancellationToken.None, new ChannelOptions(), security));
            return new Pair(server, client);
        }

        private static IpcMessage Deliver(Pair pair, MessageFormat format, byte[] payload)
        {
            lock (pair)
            {
                pair.Client.Send(format, payload, Deadline.After(Patience), CancellationToken.None);
                pair.Client.Flush(Deadline.After(Patience), CancellationToken.None);
                var received = new List<IpcMessage>();
                int taken = pair.Server.Receive(received, 1, Deadline.After(Patience), CancellationToken.None);
                Assert.Equal(1, taken);
                Assert.Null(received[0].Fault);
                return received[0];
            }
        }

        private IpcChannel Keep(IpcChannel channel)
        {
            lock (_open) _open.Add(channel);
            return channel;
        }

        public void Dispose()
        {
            lock (_open)
            {
                for (int i = _open.Count - 1; i >= 0; i--) _open[i].Close(Deadline.After(TimeSpan.FromSeconds(5)));
                _open.Clear();
            }
        }

        private sealed class Pair
        {
            public Pair(IpcChannel server, IpcChannel client)
            {
                Server = server;
                Client = client;
            }

            public IpcChannel Server { get; }

            public IpcChannel Client { get; }
        }
    }
}
