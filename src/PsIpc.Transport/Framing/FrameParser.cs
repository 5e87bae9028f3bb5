using System;
using System.Collections.Generic;

namespace PsIpc.Transport.Framing
{
    /// <summary>
    /// Cuts a byte stream into frames. Feed it whatever the transport read, in any split;
    /// it returns the frames that are complete and keeps the rest for the next call.
    /// A length above <see cref="MaxMessageSize"/> or an unknown type is rejected before any payload
    /// buffer is allocated.
    /// </summary>
    public sealed class FrameParser : Connections.IFrameReader
    {
        private static readonly byte[] Empty = Array.Empty<byte>();
        private readonly byte[] _header = new byte[FrameHeader.Size];
        private int _headerFilled;
        private bool _inPayload;      // the header is known and the payload is being filled
        private byte[]? _payload;     // the frame's own array (exactly its length), once it is allocated
        private List<byte[]>? _staged; // before that: the payload's first bytes, in 64 KiB chunks (PayloadArrays)
        private int _payloadFilled;
        private int _payloadLength;   // what the header announced

        // A payload is held at most at twice what arrived plus this step: a peer announcing a huge message
        // (within the limit) costs memory only for what it really sends. Up to the step, a payload's array is
        // allocated at its header; a larger one is staged in 64 KiB chunks until twice what arrived (in this
        // parser, or waiting in the socket: PendingBytes) plus the step covers it, then allocated once, at its
        // exact length, the staged bytes copied in and the rest read straight into it. Growing one array by
        // doubling, as before, allocated about twice the message on the large object heap and copied as much.
        internal const int InitialPayloadCapacity = 1024 * 1024;

        // With a shared budget (a socket server's clients) the step is 64 KiB, so holding much of the budget
        // costs a client as many bytes sent.
        internal const int BudgetedStep = 64 * 1024;
        private FrameType _type;
        private long _reserved;       // bytes of _payload taken from Budget

        public FrameParser(int maxMessageSize)
        {
            if (maxMessageSize < 0) throw new ArgumentOutOfRangeException(nameof(maxMessageSize));
            MaxMessageSize = maxMessageSize;
        }

        /// <summary>
        /// Shared by the connections of one server: the payload buffers are taken from it; a complete frame
        /// carries its share (<see cref="Frame"/>.BudgetHeld) until the server hands its message out, an
        /// unfinished one gives it back through <see cref="ReleaseBudget"/> at the connection's end.
        /// Null: no shared limit.
        /// </summary>
        public Channels.ReceiveBudget? Budget { get; set; }

        /// <summary>
        /// Bytes that have arrived but not been read yet (the socket's receive queue), or null when unknown: they count
        /// as arrived when the parser decides whether a large payload's array may be allocated.
        /// </summary>
        internal Func<int>? PendingBytes { get; set; }

        /// <summary>
        /// The peer is authenticated (same user, or it proved the secret): with a budget its payloads still count
        /// against it, but take the 1 MiB step of a client, so a message of up to 1 MiB is allocated at its header and
        /// read straight into its array. The 64 KiB step is for peers nobody vouches for, so that many of them
        /// announcing large messages cannot fill the server's budget with headers alone.
        /// </summary>
        internal bool PeerIsTrusted { get; set; }

        private int Step => Budget == null || PeerIsTrusted ? InitialPayloadCapacity : BudgetedStep;

        /// <summary>Gives back what the unfinished frame holds of <see cref="Budget"/>; call once reading has ended.</summary>
        public void ReleaseBudget()
        {
            Budget?.Release(_reserved);
            _reserved = 0;
            ReturnStaged();
        }

        /// <summary>The largest message payload accepted (data frames).</summary>
        public int MaxMessageSize { get; }

        /// <summary>Hello, Goodbye and Error frames are limited separately, so a tiny -MaxMessageSize still shakes hands.</summary>
        public const uint MaxControlFrameSize = 64 * 1024;

        /// <summary>What a Request or Reply frame carries before the message: the correlation id (u32) and the message's type (u8).</summary>
        public const int CorrelationPrefixSize = 5;

        /// <summary>
        /// When set, the first frame must be a Hello (or an Error): a peer that starts with anything else is
        /// rejected at its first header, so nobody can make a connection buffer a message before the handshake.
        /// </summary>
        public bool RequireHelloFirst { get; set; }

        private bool _firstFrameSeen;

        /// <summary>True while part of a frame has been seen and the rest is still missing.</summary>
        public bool IsMidFrame => _headerFilled > 0 || _inPayload;

        /// <summary>Bytes of the current partial frame received so far (header included).</summary>
        public long PartialBytes => _headerFilled + _payloadFilled;

        /// <summary>The payload buffer held for the current frame (0 between frames); what the fuzz tests bound.</summary>
        internal int PayloadCapacity => _payload?.Length ?? (_staged?.Count ?? 0) * PayloadArrays.ChunkSize;

        /// <summary>The payload length the current frame's header announced (0 between frames).</summary>
        internal int AnnouncedLength => _inPayload ? _payloadLength : 0;

        /// <summary>Parses <paramref name="count"/> bytes, appending complete frames to <paramref name="frames"/>.</summary>
        /// <exception cref="IpcException">ProtocolError or MessageTooLarge; the stream is unusable afterwards.</exception>
        public void Feed(byte[] buffer, int offset, int count, List<Frame> frames)
        {
            while (count > 0)
            {
                if (!_inPayload)
                {
                    if (_headerFilled == 0 && count >= FrameHeader.Size)
                    {
                        // The common case: a whole header in the buffer is read in place.
                        StartFrame(buffer, offset);
                        offset += FrameHeader.Size;
                        count -= FrameHeader.Size;
                    }
                    else
                    {
                        int take = Math.Min(FrameHeader.Size - _headerFilled, count);
                        Buffer.BlockCopy(buffer, offset, _header, _headerFilled, take);
                        _headerFilled += take;
                        offset += take;
                        count -= take;
                        if (_headerFilled < FrameHeader.Size) return;
                        StartFrame(_header, 0);
                    }
                    if (_payloadLength == 0) Complete(frames);
                    continue;
                }

                int n = Math.Min(_payloadLength - _payloadFilled, count);
                if (_payload == null) AllocateWhenCovered(n);
                if (_payload != null)
                {
                    Buffer.BlockCopy(buffer, offset, _payload, _payloadFilled, n);
                }
                else
                {
                    ArraySegment<byte> chunk = StagingSpace();
                    n = Math.Min(n, chunk.Count);
                    Buffer.BlockCopy(buffer, offset, chunk.Array!, chunk.Offset, n);
                }
                _payloadFilled += n;
                offset += n;
                count -= n;
                if (_payloadFilled == _payloadLength) Complete(frames);
            }
        }

        /// <summary>
        /// When the parser is inside a payload with at least <paramref name="minimum"/> bytes still to come,
        /// the part of the payload buffer the next read can fill directly (no copy through a read buffer);
        /// otherwise an empty segment. Follow a direct read with <see cref="Advance"/>.
        /// </summary>
        public ArraySegment<byte> DirectTarget(int minimum)
        {
            if (!_inPayload || _payloadLength - _payloadFilled < minimum) return default;
            if (_payload == null) AllocateWhenCovered(0);
            return _payload != null
                ? new ArraySegment<byte>(_payload, _payloadFilled, _payloadLength - _payloadFilled)
                : StagingSpace();
        }

        /// <summary>Accounts for <paramref name="count"/> bytes read into <see cref="DirectTarget"/>.</summary>
        public void Advance(int count, List<Frame> frames)
        {
            _payloadFilled += count;
            if (_payloadFilled == _payloadLength) Complete(frames);
        }

        private void StartFrame(byte[] header, int offset)
        {
            uint length = FrameHeader.ReadLength(header, offset);
            var type = (FrameType)header[offset + 4];
            if (!FrameTypes.IsKnown(type))
            {
                throw new IpcException(IpcErrorKind.ProtocolError,
                    $"The peer sent a frame of unknown type 0x{(byte)type:X2}; it does not speak the PsIpc protocol.");
            }
            if (RequireHelloFirst && !_firstFrameSeen && type != FrameType.Hello && type != FrameType.Error)
            {
                throw new IpcException(IpcErrorKind.ProtocolError,
                    $"The peer's first frame is of type 0x{(byte)type:X2}, not a Hello; it does not speak the PsIpc protocol.");
            }
            _firstFrameSeen = true;
            bool message = FrameTypes.CarriesMessage(type);
            // A Request or Reply frame carries its correlation id and the message's type before the message.
            uint limit = !message ? MaxControlFrameSize
                : FrameTypes.IsCorrelated(type) ? (uint)Math.Min((long)MaxMessageSize + CorrelationPrefixSize, uint.MaxValue) : (uint)MaxMessageSize;
            if (length > limit)
            {
                throw new IpcException(IpcErrorKind.MessageTooLarge,
                    $"The peer announced a {length}-byte {(message ? "message" : "control frame")}; the limit is {limit} bytes{(message ? " (-MaxMessageSize)" : string.Empty)}.");
            }
            _headerFilled = FrameHeader.Size;
            _type = type;
            _payloadLength = (int)length;
            _payloadFilled = 0;
            _inPayload = true;
            if (_payloadLength <= Step) Allocate(); // small enough to take at its header; larger ones are staged first
        }

        // Allocates the payload's array once twice what arrived (in this parser, in the bytes being fed: ahead, or
        // waiting in the socket) plus the step covers the announced length.
        private void AllocateWhenCovered(int ahead)
        {
            long arrived = (long)_payloadFilled + ahead;
            if (2 * arrived + Step < _payloadLength && PendingBytes != null) arrived += Math.Max(0, PendingBytes());
            if (2 * arrived + Step >= _payloadLength) Allocate();
        }

        // The payload's own array, at its exact length; what was staged is copied in and its chunks given back.
        private void Allocate()
        {
            Reserve(_payloadLength - _reserved);
            _payload = _payloadLength == 0 ? Empty : PayloadArrays.Rent(_payloadLength);
            if (_staged == null) return;
            int copied = 0;
            foreach (byte[] chunk in _staged)
            {
                int n = Math.Min(chunk.Length, _payloadFilled - copied);
                Buffer.BlockCopy(chunk, 0, _payload, copied, n);
                copied += n;
            }
            ReturnStaged();
        }

        // Where the next staged bytes go: the free end of the last chunk, or a new chunk (counted against the budget).
        private ArraySegment<byte> StagingSpace()
        {
            _staged ??= new List<byte[]>();
            int used = _payloadFilled - (_staged.Count - 1) * PayloadArrays.ChunkSize;
            if (_staged.Count == 0 || used == PayloadArrays.ChunkSize)
            {
                Reserve(PayloadArrays.ChunkSize);
                _staged.Add(PayloadArrays.RentChunk());
                used = 0;
            }
            return new ArraySegment<byte>(_staged[_staged.Count - 1], used, PayloadArrays.ChunkSize - used);
        }

        private void ReturnStaged()
        {
            if (_staged == null) return;
            foreach (byte[] chunk in _staged) PayloadArrays.ReturnChunk(chunk);
            _staged = null;
        }

        private void Reserve(long bytes)
        {
            if (Budget == null || bytes <= 0) return;
            if (!Budget.TryReserve(bytes))
            {
                throw new IpcException(IpcErrorKind.ServerBusy,
                    $"The server already holds {Budget.Used} bytes of messages from its clients, unfinished or not yet received (its limit is {Budget.Limit}); " +
                    $"this connection's {_payloadLength}-byte message does not fit now.");
            }
            _reserved += bytes;
        }

        /// <summary>Nothing completes at the end of the stream: a partial frame is an error the connection reports.</summary>
        public void Finish(List<Frame> frames)
        {
        }

        private void Complete(List<Frame> frames)
        {
            // The payload keeps its share of the budget until the server hands the message out: complete
            // messages waiting for a receiver count against the server's bound as much as unfinished ones.
            if (_payload == null) Allocate(); // not reached: staging ends long before the last byte (see AllocateWhenCovered)
            long held = _reserved;
            _reserved = 0;
            frames.Add(new Frame(_type, _payload!, held));
            _headerFilled = 0;
            _inPayload = false;
            _payload = null;
            _payloadFilled = 0;
            _payloadLength = 0;
        }
    }
}
