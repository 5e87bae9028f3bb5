using System;
using System.Collections.Concurrent;
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
    }

    /// <summary>
    /// Runs a script block for each message a server channel receives, on a pool of at most ThrottleLimit
    /// runspaces; what the script block outputs is sent back to the message's Sender, one message per item.
    /// Messages of one sender are handled one at a time and in order, so its replies come in the order of its
    /// requests; different senders are handled in parallel. A script block that throws or writes an error is
    /// counted (Errors, RecentErrors) and the handler goes on. It serves any channel whose Role is Server
    /// through the public channel contract only, and stops when the server starts closing.
    /// </summary>
    [SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
        Justification = "Its life ends in Stop, once, when its server closes; Stop disposes the token source after the dispatcher has left.")]
    public sealed class RequestHandler
    {
        // Messages taken from the server but not yet handled, all senders together: beyond this the
        // dispatcher stops taking, the server's queue fills, and its connections stop reading (back-pressure).
        private const int MaxWaiting = 4096;

        // The handler of each server, for the server's Handler and HandlerErrors properties (PsIpc.Types.ps1xml):
        // the core's channels know nothing of handlers.
        private static readonly ConditionalWeakTable<IpcChannel, RequestHandler> Attached = new ConditionalWeakTable<IpcChannel, RequestHandler>();

        private readonly IpcChannel _server;
        private readonly HandlerErrorLog _errors = new HandlerErrorLog();
        private readonly List<HandlerWorker> _workers = new List<HandlerWorker>();
        private readonly Thread _dispatcher;
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly object _gate = new object();
        private readonly Dictionary<IpcChannel, Queue<IpcMessage>> _bySender = new Dictionary<IpcChannel, Queue<IpcMessage>>();
        private int _inFlight; // messages given to the workers and not completed
        private int _waiting; // messages in _bySender's queues
        private long _waitingBytes; // their payload bytes
        private long _handled;
        private int _stopped;

        private RequestHandler(IpcChannel server, ScriptBlock scriptBlock, HandlerSettings settings)
        {
            _server = server;
            HandlerText = scriptBlock.ToString();
            ThrottleLimit = settings.ThrottleLimit;
            Depth = settings.Depth;
            TextReplies = settings.TextReplies;
            InitialSessionState sessionState = InitialSessionState.CreateDefault();
            sessionState.LanguageMode = settings.LanguageMode;
            SessionState = sessionState;
            _dispatcher = new Thread(Dispatch, 256 * 1024) { IsBackground = true, Name = $"PsIpc handler {server.Name}" };
        }

        /// <summary>
        /// Starts handling the messages of <paramref name="server"/> (any channel whose Role is Server) until it closes.
        /// </summary>
        /// <exception cref="ArgumentException">The channel is not a server that receives.</exception>
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
            handler._dispatcher.Start();
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

        /// <summary>Messages the script block failed on (it threw or wrote an error), and replies that could not be encoded.</summary>
        public long Errors => _errors.Count;

        /// <summary>The last few failures, oldest first.</summary>
        public IReadOnlyList<Exception> RecentErrors => _errors.Recent;

        internal string HandlerText { get; }

        internal InitialSessionState SessionState { get; }

        internal bool TextReplies { get; }

        /// <summary>What the workers take their messages from; completed when the handler stops.</summary>
        internal BlockingCollection<IpcMessage> Work { get; } = new BlockingCollection<IpcMessage>();

        internal bool IsStopped => Volatile.Read(ref _stopped) != 0;

        public override string ToString() => $"{{ {HandlerText.Trim()} }} (ThrottleLimit {ThrottleLimit})";

        /// <summary>Stops taking messages, waits for the running ones until the deadline, then stops the workers.</summary>
        public void Stop(Deadline deadline)
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
            _stop.Cancel();
            if (_dispatcher.IsAlive && Thread.CurrentThread != _dispatcher) _dispatcher.Join(TimeSpan.FromSeconds(5));
            List<HandlerWorker> workers;
            lock (_gate)
            {
                foreach (Queue<IpcMessage> queue in _bySender.Values) queue.Clear();
                while (_inFlight > 0)
                {
                    int ms = deadline.RemainingMilliseconds;
                    if (ms == 0) break;
                    Monitor.Wait(_gate, ms < 0 ? 1000 : Math.Min(ms, 1000));
                }
                workers = new List<HandlerWorker>(_workers);
            }
            Work.CompleteAdding(); // idle workers leave their loop
            foreach (HandlerWorker worker in workers) worker.Stop();
            _stop.Dispose();
        }

        /// <summary>Counts a failure of the script block (an ErrorRecord or an exception), unless the handler is stopping.</summary>
        internal void RecordFailure(object failure)
        {
            if (IsStopped) return; // stopping a running script block fails it: not the script block's error
            object error = failure is PSObject wrapped ? wrapped.BaseObject : failure;
            Exception exception = error is ErrorRecord record
                ? record.Exception ?? new RuntimeException(record.ToString())
                : error as Exception ?? new RuntimeException(error.ToString());
            // A script block's throw reaches the worker script through a method call, wrapped: count the script block's own.
            if (exception is MethodInvocationException && exception.InnerException != null) exception = exception.InnerException;
            _errors.Record(exception);
        }

        internal void RecordError(Exception error) => _errors.Record(error);

        private void Dispatch()
        {
            var batch = new List<IpcMessage>(64);
            CancellationToken token = _stop.Token;
            try
            {
                while (!token.IsCancellationRequested)
                {
                    lock (_gate)
                    {
                        // Bounded by count and by bytes (the server's receive buffer): while handlers are busy,
                        // the server's own queue fills and its connections stop reading, back to the clients.
                        while ((_waiting >= MaxWaiting || _waitingBytes >= _server.Options.ReceiveBufferBytes) && !token.IsCancellationRequested)
                        {
                            Monitor.Wait(_gate, 100);
                        }
                    }
                    batch.Clear();
                    if (_server.Receive(batch, 64, Deadline.Infinite, token) < 0) return; // every client came and went (a pipe's MaxClients)
                    foreach (IpcMessage message in batch)
                    {
                        if (message.Fault != null) continue; // a transport error at this point of a stream: the server reports those
                        lock (_gate)
                        {
                            if (message.IsEndOfInput && !_bySender.ContainsKey(message.Sender))
                            {
                                CloseSender(message.Sender); // nothing of this sender is pending: done
                                continue;
                            }
                            if (_bySender.TryGetValue(message.Sender, out Queue<IpcMessage> queue))
                            {
                                queue.Enqueue(message); // that sender's previous message is still being handled
                                _waiting++;
                                _waitingBytes += message.Size;
                                continue;
                            }
                            _bySender[message.Sender] = new Queue<IpcMessage>();
                        }
                        Run(message);
                    }
                }
            }
            catch (OperationCanceledException) { }
            catch (ObjectDisposedException) { }
            catch (IpcException) { } // the server closed
            catch (InvalidOperationException) { }
        }

        /// <summary>Gives a sender's message to the workers; what cannot start is counted, and that sender's next one tried.</summary>
        private void Run(IpcMessage? message)
        {
            while (message != null)
            {
                if (message.IsEndOfInput)
                {
                    CloseSender(message.Sender); // everything it sent before is answered
                    message = Next(message.Sender);
                    continue;
                }
                try
                {
                    lock (_gate)
                    {
                        // A worker is added before the message is counted, so a worker that cannot be created leaves no count behind.
                        if (_inFlight >= _workers.Count && _workers.Count < ThrottleLimit) _workers.Add(new HandlerWorker(this));
                        _inFlight++;
                    }
                    try
                    {
                        Work.Add(message);
                    }
                    catch (InvalidOperationException)
                    {
                        lock (_gate)
                        {
                            _inFlight--; // stopping: the queue takes nothing more
                            Monitor.PulseAll(_gate);
                        }
                        throw;
                    }
                    return; // Complete runs this sender's next message
                }
                catch (Exception e) when (!(e is OutOfMemoryException))
                {
                    if (!IsStopped) RecordError(e);
                    Interlocked.Increment(ref _handled);
                    message = Next(message.Sender);
                }
            }
        }

        /// <summary>Called by a worker (on its runspace's thread) when the script block is done with a message.</summary>
        internal void Complete(HandlerWorker worker, IpcMessage request, object? output, object? failure)
        {
            // Whatever happens here, this sender's next message must run: a lost turn would stall the sender.
            try
            {
                worker.Answer(request, output, failure);
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                RecordError(e);
            }
            finally
            {
                lock (_gate)
                {
                    _inFlight--;
                    Monitor.PulseAll(_gate);
                }
                Interlocked.Increment(ref _handled);
            }
            IpcMessage? next = Next(request.Sender);
            if (next != null) Run(next);
        }

        // A Line/Raw client that shut down its sending side has had all its replies: end the connection
        // (the peer reads the end of the stream). Called under _gate or on a worker's completion; Close
        // never waits for the handler.
        private static void CloseSender(IpcChannel sender)
        {
            try
            {
                sender.Close(Deadline.After(TimeSpan.FromSeconds(1)));
            }
            catch (IpcException) { } // gone already
        }

        /// <summary>The sender's next waiting message, or null (and the sender is idle again).</summary>
        private IpcMessage? Next(IpcChannel sender)
        {
            lock (_gate)
            {
                IpcMessage? next = null;
                if (_bySender.TryGetValue(sender, out Queue<IpcMessage> queue) && queue.Count > 0 && _stopped == 0)
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
                Monitor.PulseAll(_gate);
                return next;
            }
        }
    }
}
