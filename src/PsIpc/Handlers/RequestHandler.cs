using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Handlers
{
    /// <summary>How a handler runs and answers: what the cmdlet that attaches it was told, and what it knows of the server.</summary>
    internal sealed class HandlerSettings
    {
        public int ThrottleLimit { get; set; } = 8;

        /// <summary>The -Depth of replies sent as CliXml or JSON, as Send-IpcMessage's.</summary>
        public int Depth { get; set; } = 2;

        /// <summary>The caller's: handlers must not run in a fuller language than the session that attached them.</summary>
        public PSLanguageMode LanguageMode { get; set; } = PSLanguageMode.FullLanguage;

        /// <summary>
        /// The server's framing carries no message format (a socket's Line or Raw framing): a reply object goes
        /// as its text, since the peer could not tell CliXml or JSON from text.
        /// </summary>
        public bool TextReplies { get; set; }

        /// <summary>Where the handler's <c>$using:</c> variables are read: the attaching cmdlet's session.</summary>
        public SessionState? CallerState { get; set; }

        /// <summary>-ArgumentList: passed to the script block after the message, as its second, third... argument.</summary>
        public object?[] ArgumentList { get; set; } = Array.Empty<object?>();
    }

    /// <summary>
    /// Runs a script block for each message a server channel receives, on at most ThrottleLimit runspaces (no more
    /// than the server has clients); what the script block outputs is the reply to the message's Sender. Each
    /// worker takes messages from the server itself and answers on its own thread. Messages of one sender are
    /// handled one at a time and in order, so its replies come in the order of its requests; different senders are
    /// handled in parallel. A script block that throws or writes an error is counted (Errors, RecentErrors), the
    /// sender is told where it can be (HandlerFailed), and the handler goes on. It serves any channel whose Role is
    /// Server through the public channel contract only, and stops when the server starts closing.
    /// </summary>
    [SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
        Justification = "Its life ends in Stop, once, when its server closes; Stop disposes the token source after the workers have left.")]
    public sealed class RequestHandler
    {
        // Messages taken from the server while their sender's previous one was still being handled, all senders
        // together: beyond this the workers stop taking, the server's queue fills, and its connections stop reading.
        private const int MaxWaiting = 4096;

        // The handler of each server, for the server's Handler and HandlerErrors properties (PsIpc.Types.ps1xml):
        // the core's channels know nothing of handlers.
        private static readonly ConditionalWeakTable<IpcChannel, RequestHandler> Attached = new ConditionalWeakTable<IpcChannel, RequestHandler>();

        private readonly IpcChannel _server;
        private readonly HandlerErrorLog _errors = new HandlerErrorLog();
        private readonly List<HandlerWorker> _workers = new List<HandlerWorker>();
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly object _gate = new object();
        private readonly object _takeGate = new object(); // see Take
        private readonly Dictionary<IpcChannel, Queue<IpcMessage>> _bySender = new Dictionary<IpcChannel, Queue<IpcMessage>>();
        private int _inFlight; // messages being handled
        private int _waiting; // messages in _bySender's queues
        private long _waitingBytes; // their payload bytes
        private long _handled;
        private int _stopped;

        private RequestHandler(IpcChannel server, ScriptBlock scriptBlock, HandlerSettings settings)
        {
            _server = server;
            HandlerText = scriptBlock.ToString();
            Script = HandlerScript.Prepare(scriptBlock, settings.CallerState);
            ArgumentList = settings.ArgumentList ?? Array.Empty<object?>();
            ThrottleLimit = settings.ThrottleLimit;
            Depth = settings.Depth;
            TextReplies = settings.TextReplies;
            InitialSessionState sessionState = InitialSessionState.CreateDefault();
            sessionState.LanguageMode = settings.LanguageMode;
            sessionState.Commands.Add(new SessionStateCmdletEntry(HandlerWorker.HandlerLoopName, typeof(HandlerLoopCommand), null));
            SessionState = sessionState;
        }

        /// <summary>
        /// Starts handling the messages of <paramref name="server"/> (any channel whose Role is Server) until it closes.
        /// </summary>
        /// <exception cref="ArgumentException">The channel is not a server that receives, or a $using: expression is not supported.</exception>
        /// <exception cref="InvalidOperationException">The server has a handler already.</exception>
        internal static RequestHandler Attach(IpcChannel server, ScriptBlock scriptBlock, HandlerSettings settings)
        {
            if (server == null) throw new ArgumentNullException(nameof(server));
            if (scriptBlock == null) throw new ArgumentNullException(nameof(scriptBlock));
            if (settings == null) throw new ArgumentNullException(nameof(settings));
            if (server.Role != ChannelRole.Server || !server.CanReceive)
            {
                throw new ArgumentException(
                    $"A request handler answers the messages of a server; '{server.Name}' is a {server.Kind} {server.Role.ToString().ToLowerInvariant()} channel.", nameof(server));
            }
            var handler = new RequestHandler(server, scriptBlock, settings);
            lock (Attached)
            {
                if (Attached.TryGetValue(server, out _)) throw new InvalidOperationException($"The server '{server.Name}' has a request handler already.");
                Attached.Add(server, handler);
            }
            server.Closing += (_, deadline) => handler.Stop(deadline);
            lock (handler._gate) handler._workers.Add(new HandlerWorker(handler)); // one waits for the first message
            if (server.IsClosed) handler.Stop(Deadline.After(TimeSpan.Zero)); // it closed before Closing was hooked
            return handler;
        }

        /// <summary>The handler attached to a server channel, or null.</summary>
        public static RequestHandler? Of(IpcChannel channel) =>
            channel != null && Attached.TryGetValue(channel, out RequestHandler handler) ? handler : null;

        /// <summary>Runspaces handling messages at the same time, at most.</summary>
        public int ThrottleLimit { get; }

        /// <summary>How deep reply objects are serialized (CliXml, JSON).</summary>
        public int Depth { get; }

        /// <summary>Messages the script block has finished with (failed ones included).</summary>
        public long MessagesHandled => Interlocked.Read(ref _handled);

        /// <summary>Messages being handled right now.</summary>
        public int Busy { get { lock (_gate) return _inFlight; } }

        /// <summary>Worker runspaces started so far (at most ThrottleLimit, and no more than the server had clients).</summary>
        public int Workers { get { lock (_gate) return _workers.Count; } }

        /// <summary>Messages the script block failed on (it threw or wrote an error), and replies that could not be encoded.</summary>
        public long Errors => _errors.Count;

        /// <summary>The last few failures, oldest first.</summary>
        public IReadOnlyList<Exception> RecentErrors => _errors.Recent;

        internal string HandlerText { get; }

        internal HandlerScript Script { get; }

        internal object?[] ArgumentList { get; }

        internal InitialSessionState SessionState { get; }

        internal bool TextReplies { get; }

        internal bool IsStopped => Volatile.Read(ref _stopped) != 0;

        public override string ToString() => $"{{ {HandlerText.Trim()} }} (ThrottleLimit {ThrottleLimit})";

        /// <summary>Stops taking messages, waits for the running ones until the deadline, then stops the workers.</summary>
        public void Stop(Deadline deadline)
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
            _stop.Cancel();
            List<HandlerWorker> workers;
            lock (_gate)
            {
                foreach (Queue<IpcMessage> queue in _bySender.Values) queue.Clear();
                Monitor.PulseAll(_gate);
                while (_inFlight > 0)
                {
                    int ms = deadline.RemainingMilliseconds;
                    if (ms == 0) break;
                    Monitor.Wait(_gate, ms < 0 ? 1000 : Math.Min(ms, 1000));
                }
                workers = new List<HandlerWorker>(_workers);
            }
            foreach (HandlerWorker worker in workers) worker.Stop();
            _stop.Dispose();
        }

        /// <summary>Counts a failure of the script block (an ErrorRecord or an exception) and returns it as an exception.</summary>
        internal Exception RecordFailure(object failure)
        {
            object error = failure is PSObject wrapped ? wrapped.BaseObject : failure;
            Exception exception = error is ErrorRecord record
                ? record.Exception ?? new RuntimeException(record.ToString())
                : error as Exception ?? new RuntimeException(error.ToString());
            // A throw inside a method call arrives wrapped: count the script block's own.
            if (exception is MethodInvocationException && exception.InnerException != null) exception = exception.InnerException;
            if (!IsStopped) _errors.Record(exception); // stopping a running script block fails it: not the script block's error
            return exception;
        }

        internal void RecordError(Exception error) => _errors.Record(error);

        /// <summary>
        /// A worker's next message (called on its runspace's thread): taken from the server, or null when the handler
        /// stops or no message will come again. A message whose sender is being handled waits for that sender's turn.
        /// </summary>
        internal IpcMessage? Take()
        {
            var one = new List<IpcMessage>(1);
            while (!IsStopped)
            {
                one.Clear();
                IpcMessage message;
                // One taker at a time, from the Receive to the sender's registration: two workers that each took a
                // message of the same sender could otherwise register them in the other order (replies reordered).
                lock (_takeGate)
                {
                    if (IsStopped) return null;
                    try
                    {
                        if (_server.Receive(one, 1, Deadline.Infinite, _stop.Token) < 0) return null; // every client came and went (a pipe's MaxClients)
                    }
                    catch (Exception e) when (e is OperationCanceledException || e is ObjectDisposedException || e is IpcException || e is InvalidOperationException)
                    {
                        return null; // stopping, or the server closed
                    }
                    message = one[0];
                    if (message.Fault != null) continue; // a transport error at this point of a stream: the server reports those
                    lock (_gate)
                    {
                        if (_bySender.TryGetValue(message.Sender, out Queue<IpcMessage> queue))
                        {
                            queue.Enqueue(message); // that sender's previous message is still being handled: its worker takes this next
                            _waiting++;
                            _waitingBytes += message.Size;
                            // Bounded by count and by bytes (the server's receive buffer): the server's own queue fills behind.
                            while ((_waiting >= MaxWaiting || _waitingBytes >= _server.Options.ReceiveBufferBytes) && !IsStopped) Monitor.Wait(_gate, 100);
                            continue;
                        }
                        if (message.IsEndOfInput)
                        {
                            CloseSender(message.Sender); // nothing of this sender is pending: done
                            continue;
                        }
                        _bySender[message.Sender] = new Queue<IpcMessage>();
                        _inFlight++;
                        AddWorkerIfNeeded();
                    }
                }
                return message;
            }
            return null;
        }

        /// <summary>
        /// Called by a worker when the script block is done with a message: answers, counts, and returns that
        /// sender's next message for the same worker (its order is kept), or null.
        /// </summary>
        internal IpcMessage? Complete(HandlerWorker worker, IpcMessage request, object? output, object? failure)
        {
            // Counted before the answer goes out: a caller that has its reply must already see the count.
            Interlocked.Increment(ref _handled);
            try
            {
                worker.Answer(request, output, failure);
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                RecordError(e);
            }
            lock (_gate)
            {
                _inFlight--;
                while (true)
                {
                    IpcMessage? next = Next(request.Sender);
                    if (next == null || !next.IsEndOfInput)
                    {
                        if (next != null) _inFlight++;
                        Monitor.PulseAll(_gate);
                        return next;
                    }
                    CloseSender(next.Sender); // everything it sent before is answered
                }
            }
        }

        // One worker per busy sender, up to ThrottleLimit and the server's clients: a single client's requests are
        // handled in order anyway, and every idle worker waiting on the server is woken for each message. Under _gate.
        private void AddWorkerIfNeeded()
        {
            if (_workers.Count >= ThrottleLimit || _inFlight < _workers.Count || _workers.Count >= Math.Max(1, _server.PeerCount)) return;
            try
            {
                _workers.Add(new HandlerWorker(this));
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                RecordError(e); // the workers there are go on
            }
        }

        // A Line/Raw client that shut down its sending side has had all its replies: end the connection
        // (the peer reads the end of the stream). Close never waits for the handler.
        private static void CloseSender(IpcChannel sender)
        {
            try
            {
                sender.Close(Deadline.After(TimeSpan.FromSeconds(1)));
            }
            catch (IpcException) { } // gone already
        }

        /// <summary>The sender's next waiting message, or null (and the sender is idle again). Under _gate.</summary>
        private IpcMessage? Next(IpcChannel sender)
        {
            IpcMessage? next = null;
            if (_bySender.TryGetValue(sender, out Queue<IpcMessage> queue) && queue.Count > 0 && !IsStopped)
            {
                next = queue.Dequeue();
                _waiting--;
                _waitingBytes -= next.Size;
            }
            else
            {
                if (queue != null)
                {
                    _waiting -= queue.Count;
                    foreach (IpcMessage dropped in queue) _waitingBytes -= dropped.Size;
                }
                _bySender.Remove(sender);
            }
            return next;
        }
    }
}
