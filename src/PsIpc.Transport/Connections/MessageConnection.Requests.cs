using System;
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Connections
{
    // Request/reply (docs/protocol.md 4): correlation ids in Request and Reply frames, the requests this end
    // waits on, and the requests of the peer this end has not answered yet.
    internal sealed partial class MessageConnection
    {
        private readonly object _requestGate = new object();
        private readonly Dictionary<uint, PendingReply> _pending = new Dictionary<uint, PendingReply>();
        private readonly LinkedList<uint> _unanswered = new LinkedList<uint>(); // the peer's requests, oldest first
        private IpcException? _requestsEnded; // set once the connection ended: no request can be answered any more
        private int _nextCorrelationId;
        private long _lateReplies;

        /// <summary>True when the peer's Hello announced Request/Reply frames (a PsIpc peer of this version or later).</summary>
        public bool PeerSupportsCorrelation => PeerHello?.SupportsCorrelation == true;

        /// <summary>Replies that came after their request had given up (timeout, Ctrl+C) or to no request of this end: dropped.</summary>
        public long LateRepliesDropped => Interlocked.Read(ref _lateReplies);

        /// <summary>Requests sent on this connection that wait for their reply.</summary>
        public int PendingRequests { get { lock (_requestGate) return _pending.Count; } }

        /// <summary>
        /// Sends one Request frame and waits for the Reply with its correlation id. Null at the deadline: the
        /// request is then forgotten, and a reply that still comes is dropped and counted (LateRepliesDropped).
        /// A reply that reports a failure comes back as a message whose Fault is set.
        /// </summary>
        public IpcMessage? Request(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            var pending = new PendingReply(NextCorrelationId());
            lock (_requestGate)
            {
                if (_requestsEnded != null) throw _requestsEnded;
                _pending.Add(pending.Id, pending);
            }
            try
            {
                Enqueue(new OutgoingFrame(FrameType.Request, payload, pending.Id, (FrameType)format), deadline, cancellationToken);
                bool answered = RequesterReads ? WaitReadingMyself(pending, deadline, cancellationToken) : pending.Wait(deadline, cancellationToken);
                return answered ? pending.Result() : null;
            }
            finally
            {
                lock (_requestGate) _pending.Remove(pending.Id); // from here on, its reply is late
            }
        }

        /// <summary>
        /// Answers <paramref name="request"/>: a Reply frame with its correlation id when it came as a Request, a
        /// plain message otherwise.
        /// </summary>
        public void Reply(IpcMessage request, MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            if (request.CorrelationId != 0 && TakeUnanswered(request.CorrelationId))
            {
                Enqueue(new OutgoingFrame(FrameType.Reply, payload, request.CorrelationId, (FrameType)format), deadline, cancellationToken);
                return;
            }
            Enqueue(new OutgoingFrame((FrameType)format, payload), deadline, cancellationToken);
        }

        /// <summary>
        /// Tells the peer that <paramref name="request"/> failed, in a Reply frame (with the request's correlation id,
        /// or 0 for a plain message): the connection stays open. False when the peer cannot be told (no Reply frames).
        /// </summary>
        public bool ReplyError(IpcMessage request, IpcErrorKind kind, string message, Deadline deadline, CancellationToken cancellationToken)
        {
            if (!PeerSupportsCorrelation) return false;
            uint id = request.CorrelationId != 0 && TakeUnanswered(request.CorrelationId) ? request.CorrelationId : 0;
            Enqueue(new OutgoingFrame(FrameType.Reply, ErrorFrame.Encode(kind, message), id, FrameType.Error), deadline, cancellationToken);
            return true;
        }

        /// <summary>
        /// A message a script sends to this peer (Send-IpcMessage $envelope.Sender): it answers the peer's oldest
        /// unanswered request, if there is one, so a Receive/Send loop serves Invoke-IpcRequest; a plain message otherwise.
        /// </summary>
        public void SendMessage(MessageFormat format, byte[] payload, Deadline deadline, CancellationToken cancellationToken)
        {
            if (!_isServerSide) _awaitsAnswer = true; // its next Receive may read the answer itself (ReadForReceiver)
            uint answers = 0;
            if (PeerSupportsCorrelation)
            {
                lock (_requestGate)
                {
                    if (_unanswered.Count > 0)
                    {
                        answers = _unanswered.First!.Value;
                        _unanswered.RemoveFirst();
                    }
                }
            }
            Enqueue(answers != 0 ? new OutgoingFrame(FrameType.Reply, payload, answers, (FrameType)format) : new OutgoingFrame((FrameType)format, payload),
                deadline, cancellationToken);
        }

        private uint NextCorrelationId()
        {
            while (true)
            {
                uint id = (uint)Interlocked.Increment(ref _nextCorrelationId);
                if (id != 0) return id; // 0 means "no request"
            }
        }

        private bool TakeUnanswered(uint id)
        {
            lock (_requestGate)
            {
                for (LinkedListNode<uint>? node = _unanswered.First; node != null; node = node.Next)
                {
                    if (node.Value == id)
                    {
                        _unanswered.Remove(node);
                        return true;
                    }
                }
                return false;
            }
        }

        // Reader side: a Request or Reply frame. Returns the message to deliver to the owner's queue, or null when it
        // went to a waiting request (or was dropped as late). Throws ProtocolError for a frame that is not one.
        private IpcMessage? DispatchCorrelated(Frame frame)
        {
            byte[] body = frame.Payload;
            if (body.Length < FrameParser.CorrelationPrefixSize) throw MalformedCorrelated(frame.Type, "is shorter than its correlation id and type");
            uint id = FrameHeader.ReadLength(body, 0);
            var inner = (FrameType)body[4];
            bool isError = frame.Type == FrameType.Reply && inner == FrameType.Error;
            if (!isError && !FrameTypes.IsData(inner)) throw MalformedCorrelated(frame.Type, $"wraps a message of type 0x{(byte)inner:X2}");
            IpcMessage message;
            if (isError)
            {
                message = IpcMessage.ForFault(ErrorFrame.DecodeReplyError(body, FrameParser.CorrelationPrefixSize, ChannelName), SenderView!);
            }
            else
            {
                var payload = new byte[body.Length - FrameParser.CorrelationPrefixSize];
                Buffer.BlockCopy(body, FrameParser.CorrelationPrefixSize, payload, 0, payload.Length);
                message = new IpcMessage((MessageFormat)inner, payload, SenderView!) { CorrelationId = frame.Type == FrameType.Request ? id : 0 };
            }
            if (frame.Type == FrameType.Request)
            {
                if (id == 0) throw MalformedCorrelated(frame.Type, "has the correlation id 0");
                lock (_requestGate) _unanswered.AddLast(id);
                if (_isServerSide) _peerRequested = true; // its reader thread lets a receiver read from now on (.CallerRead.cs)
                message.BudgetHeld = frame.BudgetHeld;
                return message;
            }
            if (id == 0 && !_isServerSide)
            {
                message.BudgetHeld = frame.BudgetHeld; // an answer to no request: delivered like any message
                return message;
            }
            _options.ReceiveBudget?.Release(frame.BudgetHeld); // handed to the waiting request (or dropped) here
            if (_isServerSide)
            {
                Interlocked.Increment(ref _lateReplies); // a server makes no requests: its clients' replies answer nothing
                return null;
            }
            PendingReply? pending;
            lock (_requestGate)
            {
                if (_pending.TryGetValue(id, out pending)) _pending.Remove(id);
            }
            if (pending == null)
            {
                Interlocked.Increment(ref _lateReplies);
                return null;
            }
            if (message.Fault == null) (CountersOf ?? SenderView)?.CountReceived(1, message.Size);
            pending.Complete(message);
            PulseTurnWaiters();
            return null;
        }

        private IpcException MalformedCorrelated(FrameType type, string what) =>
            new IpcException(IpcErrorKind.ProtocolError, $"The peer of '{ChannelName}' sent a {type} frame that {what}.", ChannelName);

        // The connection ended: every waiting request fails now (its caller would otherwise wait for its deadline).
        private void FailPendingRequests(IpcException? fault)
        {
            List<PendingReply> waiting;
            IpcException error;
            lock (_requestGate)
            {
                error = fault != null
                    ? new IpcException(fault.Kind == IpcErrorKind.ChannelClosed ? IpcErrorKind.ChannelClosed : IpcErrorKind.PeerDisconnected,
                        $"'{ChannelName}' ended before the reply came: {fault.Message}", ChannelName, fault)
                    : ClosedHere
                        ? new IpcException(IpcErrorKind.ChannelClosed, $"The channel '{ChannelName}' was closed before the reply came.", ChannelName)
                        : new IpcException(IpcErrorKind.PeerDisconnected, $"The peer of '{ChannelName}' closed the connection before it replied.", ChannelName);
                _requestsEnded ??= error;
                waiting = new List<PendingReply>(_pending.Values);
                _pending.Clear();
                _unanswered.Clear();
            }
            foreach (PendingReply pending in waiting) pending.Fail(error);
            PulseTurnWaiters();
        }
    }

    /// <summary>One request waiting for its reply: completed by whoever reads the reply, or failed when the connection ends.</summary>
    internal sealed class PendingReply
    {
        private readonly object _gate = new object();
        private IpcMessage? _reply;
        private IpcException? _failure;
        private bool _done;

        public PendingReply(uint id)
        {
            Id = id;
        }

        public uint Id { get; }

        public bool IsDone { get { lock (_gate) return _done; } }

        /// <summary>Waits for the reply or the failure. False at the deadline; throws when cancelled.</summary>
        public bool Wait(Deadline deadline, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                while (!_done)
                {
                    if (!GateWait.Wait(_gate, deadline, cancellationToken)) return _done;
                }
                return true;
            }
        }

        public IpcMessage Result()
        {
            lock (_gate)
            {
                if (_failure != null) throw _failure;
                return _reply!;
            }
        }

        public void Complete(IpcMessage reply)
        {
            lock (_gate)
            {
                _reply = reply;
                _done = true;
                Monitor.PulseAll(_gate);
            }
        }

        public void Fail(IpcException failure)
        {
            lock (_gate)
            {
                _failure = failure;
                _done = true;
                Monitor.PulseAll(_gate);
            }
        }
    }
}
