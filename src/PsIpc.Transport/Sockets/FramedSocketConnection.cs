using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// A LengthPrefixed (PsIpc protocol) socket connection: the pipes' <see cref="StreamConnection"/> over a
    /// NetworkStream, adapted to <see cref="ISocketConnection"/>. On the server side the stream first checks
    /// that the client does not speak HTTP.
    /// </summary>
    internal sealed class FramedSocketConnection : ISocketConnection, IConnectionOwner
    {
        private readonly ISocketConnectionOwner _owner;
        private readonly StreamConnection _connection;
        private readonly HttpSniffStream _sniff;
        private readonly string _channelName;

        /// <param name="secured">The stream the TLS/shared-secret handshake left (it already checked for HTTP);
        /// null for a plain socket.</param>
        public FramedSocketConnection(Socket socket, System.IO.Stream secured, ISocketConnectionOwner owner, ChannelOptions options, string channelName, bool isServerSide)
        {
            Socket = socket;
            _owner = owner;
            _channelName = channelName;
            RemoteAddress = SocketNames.RemoteOf(socket);
            System.IO.Stream stream = secured;
            if (stream == null)
            {
                stream = new NetworkStream(socket, ownsSocket: true);
                if (isServerSide) stream = _sniff = new HttpSniffStream(stream);
            }
            // Small replies go straight to the socket only when no TLS layer sits between.
            _connection = new StreamConnection(stream, socket, this, options, channelName, isServerSide)
            {
                DirectSocketWrites = !(stream is System.Net.Security.SslStream),
            };
        }

        public int Id => _connection.Id;
        public Socket Socket { get; }
        public string RemoteAddress { get; }
        public int PeerProcessId => _connection.PeerHello?.ProcessId ?? 0;
        public int PeerMaxMessageSize => _connection.PeerHello?.MaxMessageSize ?? int.MaxValue;
        public bool IsEnded => _connection.IsEnded;
        public IpcException Fault => _connection.Fault;

        public IpcChannel SenderView
        {
            get => _connection.SenderView;
            set => _connection.SenderView = value;
        }

        /// <summary>The channel whose received-message counters this connection updates.</summary>
        public IpcChannel CountersOf
        {
            get => _connection.CountersOf;
            set => _connection.CountersOf = value;
        }

        public void Start() => _connection.Start();

        public bool WaitForOpen(Deadline deadline, CancellationToken cancellationToken) => _connection.WaitForHello(deadline, cancellationToken);

        public void Enqueue(OutgoingFrame frame, Deadline deadline, CancellationToken cancellationToken) =>
            _connection.Enqueue(frame, deadline, cancellationToken);

        public void Flush(Deadline deadline, CancellationToken cancellationToken) => _connection.Flush(deadline, cancellationToken);

        public void Close(Deadline deadline) => _connection.Close(deadline);

        public void Abort(IpcException reason) => _connection.Abort(reason);

        public long LastActivity => _connection.LastActivity;

        public void Expire(IpcException reason) => _connection.Expire(reason);

        BoundedQueue<IpcMessage> IConnectionOwner.Inbound => _owner.Inbound;

        IpcException IConnectionOwner.OnHello(StreamConnection connection) => _owner.OnOpened(this);

        void IConnectionOwner.OnEnded(StreamConnection connection, IpcException fault)
        {
            if (_sniff != null && _sniff.SawHttp) fault = HttpSniffer.Refusal(_channelName);
            _owner.OnEnded(this, fault);
        }
    }
}
