using System;
using System.Collections.Generic;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Text;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;

namespace PsIpc.Sockets
{
    /// <summary>
    /// Runs a script block for each message a socket server receives, on a pool of at most ThrottleLimit
    /// runspaces; what the script block outputs is sent back to the client that sent the message.
    /// Messages of one client are handled one at a time and in order, so its replies come in the order of its
    /// requests; different clients are handled in parallel. A handler that throws or writes an error is
    /// counted on the server (HandlerErrors, RecentHandlerErrors) and the server goes on.
    /// </summary>
    public sealed class SocketRequestHandler
    {
        // Messages taken from the server but not yet handled, all clients together: beyond this the
        // dispatcher stops taking, the server's queue fills, and its connections stop reading (back-pressure).
        private const int MaxWaiting = 4096;

        private static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, false);

        // Runs once in each worker runspace, for the server's lifetime: creates the handler from its text (a
        // script block belongs to the runspace that created it) and then handles one work item after the
        // other. Invoking a script block in a running loop costs microseconds; a PowerShell invocation per
        // message cost about half a millisecond to several. For each item it decodes JSON (ConvertFrom-Json
        // needs a runspace) and shapes the replies: mode 0 keeps objects (sent as CliXml), 1 turns them into
        // JSON (a peer that may not send or receive CliXml), 2 into text (Line and Raw framing).
        // The handler is called with InvokeReturnAsIs: in this loop, which PowerShell keeps interpreting,
        // `& $handler $body 2>&1` cost 35-50 us a message and InvokeReturnAsIs about 10 us. Its errors then go
        // to this pipeline's error stream ($PsIpcErrors, read and cleared after each message) instead of
        // being merged into the output; a terminating one is thrown as before.
        private const string WorkerScript = @"
param([string] $PsIpcHandlerText, $PsIpcWork, $PsIpcDone, $PsIpcErrors)
$PsIpcHandler = [scriptblock]::Create($PsIpcHandlerText)
foreach ($PsIpcItem in $PsIpcWork.GetConsumingEnumerable()) {
    $PsIpcReplies = [System.Collections.Generic.List[object]]::new()
    $PsIpcFailure = $null
    try {
        $PsIpcBody = $PsIpcItem.Body
        if ($PsIpcItem.IsJson) { $PsIpcBody = ConvertFrom-Json -InputObject $PsIpcBody }
        foreach ($PsIpcReply in $PsIpcHandler.InvokeReturnAsIs($PsIpcBody)) {
            if ($PsIpcReply -is [System.Management.Automation.ErrorRecord]) {
                if ($null -eq $PsIpcFailure) { $PsIpcFailure = $PsIpcReply }
                continue
            }
            if ($null -eq $PsIpcReply) { continue }
            if ($PsIpcReply -is [string] -or $PsIpcReply -is [byte[]] -or $PsIpcItem.Mode -eq 0) { $PsIpcReplies.Add($PsIpcReply) }
            elseif ($PsIpcItem.Mode -eq 2) { $PsIpcReplies.Add([string]$PsIpcReply) }
            else { $PsIpcReplies.Add([pscustomobject]@{ PSTypeName = 'PsIpc.JsonReply'; Json = (ConvertTo-Json -InputObject $PsIpcReply -Compress -Depth 2) }) }
        }
    }
    catch { $PsIpcFailure = $_ }
    if ($PsIpcErrors.Count -gt 0) {
        if ($null -eq $PsIpcFailure) { $PsIpcFailure = $PsIpcErrors[0] }
        $PsIpcErrors.Clear()
    }
    $PsIpcDone.Complete($PsIpcItem, $PsIpcReplies, $PsIpcFailure)
}
";

        private readonly ISocketServer _server;
        private readonly IpcChannel _channel; // the same server, as the channel its messages are received from
        private readonly string _handlerText;
        private readonly InitialSessionState _sessionState;
        private readonly System.Collections.Concurrent.BlockingCollection<HandlerWorkItem> _work =
            new System.Collections.Concurrent.BlockingCollection<HandlerWorkItem>();
        private readonly List<Worker> _workers = new List<Worker>();
        private readonly HandlerCompletion _completion;
        private int _inFlight; // work items added and not completed
        private readonly Thread _dispatcher;
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly object _gate = new object();
        private readonly Dictionary<IpcChannel, Queue<IpcMessage>> _bySender = new Dictionary<IpcChannel, Queue<IpcMessage>>();
        private int _waiting;
        private long _waitingBytes; // payload bytes of the messages in _bySender's queues
        private long _handled;
        private int _stopped;

        /// <param name="languageMode">The caller's: handlers must not run in a fuller language than the
        /// session that started the server (ConstrainedLanguage stays constrained).</param>
        public SocketRequestHandler(ISocketServer server, ScriptBlock scriptBlock, int throttleLimit, PSLanguageMode languageMode)
        {
            _server = server;
            _channel = server as IpcChannel ?? throw new ArgumentException("A socket server is a channel.", nameof(server));
            _handlerText = scriptBlock.ToString();
            ThrottleLimit = throttleLimit;
            InitialSessionState sessionState = InitialSessionState.CreateDefault();
            sessionState.LanguageMode = languageMode;
            _sessionState = sessionState;
            _completion = new HandlerCompletion(this);
            _dispatcher = new Thread(Dispatch, 256 * 1024) { IsBackground = true, Name = $"PsIpc handler {server.Name}" };
            server.Closing += (_, deadline) => Stop(deadline);
            _dispatcher.Start();
        }

        /// <summary>Runspaces handling messages at the same time, at most.</summary>
        public int ThrottleLimit { get; }

        /// <summary>Messages the script block has finished with (failed ones included).</summary>
        public long MessagesHandled => Interlocked.Read(ref _handled);

        /// <summary>Messages being handled right now.</summary>
        public int Busy { get { lock (_gate) return _inFlight; } }

        public override string ToString() => $"{{ {_handlerText.Trim()} }} (ThrottleLimit {ThrottleLimit})";

        /// <summary>Stops taking messages, waits for the running ones until the deadline, then stops the workers.</summary>
        public void Stop(Deadline deadline)
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
            _stop.Cancel();
            _dispatcher.Join(TimeSpan.FromSeconds(5));
            List<Worker> workers;
            lock (_gate)
            {
                foreach (Queue<IpcMessage> queue in _bySender.Values) queue.Clear();
                while (_inFlight > 0)
                {
                    int ms = deadline.RemainingMilliseconds;
                    if (ms == 0) break;
                    Monitor.Wait(_gate, ms < 0 ? 1000 : Math.Min(ms, 1000));
                }
                workers = new List<Worker>(_workers);
            }
            _work.CompleteAdding(); // idle workers leave their loop
            foreach (Worker worker in workers) worker.Stop();
            _stop.Dispose();
        }

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
                    if (_channel.Receive(batch, 64, Deadline.Infinite, token) < 0) return;
                    foreach (IpcMessage message in batch)
                    {
                        if (message.Fault != null) continue; // counted by the server (ConnectionErrors)
                        lock (_gate)
                        {
                            if (message.IsEndOfInput && !_bySender.ContainsKey(message.Sender))
                            {
                                CloseSender(message.Sender); // nothing of this client is pending: done
                                continue;
                            }
                            if (_bySender.TryGetValue(message.Sender, out Queue<IpcMessage> queue))
                            {
                                queue.Enqueue(message); // that client's previous message is still being handled
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
            catch (IpcException) { } // the server closed
            catch (InvalidOperationException) { }
        }

        private void Run(IpcMessage message)
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
                    object body = Decode(message, out bool isJson);
                    int mode = _server.Framing != SocketFraming.LengthPrefixed ? 2 : IsAuthenticated(message.Sender) ? 0 : 1;
                    lock (_gate)
                    {
                        _inFlight++;
                        if (_inFlight > _workers.Count && _workers.Count < ThrottleLimit) _workers.Add(new Worker(this));
                    }
                    try
                    {
                        _work.Add(new HandlerWorkItem(message, body, isJson, mode));
                    }
                    catch (InvalidOperationException)
                    {
                        lock (_gate) _inFlight--; // stopping: the queue takes nothing more
                        throw;
                    }
                    return; // Complete runs this client's next message
                }
                catch (Exception e) when (!(e is OutOfMemoryException))
                {
                    // Could not start (undecodable body, stopped): count it, go on with this client's next message.
                    if (Volatile.Read(ref _stopped) == 0) _server.RecordHandlerError(e);
                    Interlocked.Increment(ref _handled);
                    message = Next(message.Sender);
                }
            }
        }

        // Called by a worker's script when it is done with an item.
        internal void Complete(HandlerWorkItem item, IList<object> replies, object failure)
        {
            // Whatever happens here, this client's next message must run: a lost turn would stall the client.
            try
            {
                if (failure != null)
                {
                    object error = failure is PSObject wrapped ? wrapped.BaseObject : failure;
                    Exception exception = error is ErrorRecord record
                        ? record.Exception ?? new RuntimeException(record.ToString())
                        : error as Exception ?? new RuntimeException(error.ToString());
                    // A handler's throw reaches the worker script through InvokeReturnAsIs, wrapped: report the handler's own.
                    if (exception is MethodInvocationException && exception.InnerException != null) exception = exception.InnerException;
                    if (Volatile.Read(ref _stopped) == 0) _server.RecordHandlerError(exception);
                }
                // Replies written before a failure still go out.
                Reply(item.Request, replies);
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                _server.RecordHandlerError(e); // a reply that could not be encoded
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
            IpcMessage next = Next(item.Request.Sender);
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
        private IpcMessage Next(IpcChannel sender)
        {
            lock (_gate)
            {
                IpcMessage next = null;
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

        private void Reply(IpcMessage request, IList<object> output)
        {
            foreach (object reply in output)
            {
                if (reply == null) continue;
                PSObject item = PSObject.AsPSObject(reply);
                MessageFormat format;
                byte[] payload;
                object value = item.BaseObject;
                if (value is string text)
                {
                    format = MessageFormat.Text;
                    payload = Utf8.GetBytes(text);
                }
                else if (value is byte[] bytes)
                {
                    format = MessageFormat.Bytes;
                    payload = bytes;
                }
                else if (item.TypeNames.Count > 0 && item.TypeNames[0] == "PsIpc.JsonReply")
                {
                    format = MessageFormat.Json;
                    payload = Utf8.GetBytes(item.Properties["Json"].Value?.ToString() ?? "null");
                }
                else
                {
                    format = MessageFormat.CliXml;
                    payload = Utf8.GetBytes(PSSerializer.Serialize(item, 2));
                }
                try
                {
                    request.Sender.Send(format, payload, Deadline.After(request.Sender.Options.CloseTimeout), CancellationToken.None);
                }
                catch (IpcException)
                {
                    return; // the client left (or stopped reading): nobody to reply to
                }
            }
        }

        private static object Decode(IpcMessage message, out bool isJson)
        {
            isJson = false;
            switch (message.Format)
            {
                case MessageFormat.Text:
                    return message.GetText();
                case MessageFormat.Json:
                    isJson = true;
                    return message.GetText();
                case MessageFormat.CliXml:
                    if (!IsAuthenticated(message.Sender))
                    {
                        throw new InvalidOperationException(PayloadCodec.CliXmlRefusal(message.Sender));
                    }
                    return PSSerializer.Deserialize(message.GetText());
                default:
                    return message.Payload;
            }
        }

        internal static bool IsAuthenticated(IpcChannel sender) => PayloadCodec.AcceptsCliXmlFrom(sender);

        /// <summary>One runspace running <see cref="WorkerScript"/> until the work queue is completed.</summary>
        private sealed class Worker
        {
            private readonly Runspace _runspace;
            private readonly PowerShell _shell;
            private readonly ManualResetEventSlim _started = new ManualResetEventSlim(false);
            private IAsyncResult _running;

            public Worker(SocketRequestHandler handler)
            {
                _runspace = RunspaceFactory.CreateRunspace(handler._sessionState);
                _shell = PowerShell.Create();
                _shell.Runspace = _runspace;
                _shell.AddScript(WorkerScript, useLocalScope: true)
                    .AddArgument(handler._handlerText).AddArgument(handler._work).AddArgument(handler._completion)
                    .AddArgument(_shell.Streams.Error);
                // Opening a runspace takes a while: not on the dispatcher's thread. Items wait in the queue.
                ThreadPool.QueueUserWorkItem(_ =>
                {
                    try
                    {
                        _runspace.Open();
                        _running = _shell.BeginInvoke();
                    }
                    catch (Exception e) when (!(e is OutOfMemoryException))
                    {
                        if (Volatile.Read(ref handler._stopped) == 0) handler._server.RecordHandlerError(e);
                    }
                    finally
                    {
                        _started.Set();
                    }
                });
            }

            public void Stop()
            {
                try
                {
                    _started.Wait(10000);
                    // Idle workers end when the queue completes; a handler still running after a second is stopped.
                    if (_running != null && !_running.AsyncWaitHandle.WaitOne(1000)) _shell.Stop();
                }
                catch (Exception e) when (e is InvalidOperationException || e is ObjectDisposedException || e is PSInvalidOperationException) { }
                _shell.Dispose();
                _runspace.Dispose();
                _started.Dispose();
            }
        }
    }

    /// <summary>A message on its way to a handler runspace (read by the worker script; not for users).</summary>
    public sealed class HandlerWorkItem
    {
        internal HandlerWorkItem(IpcMessage request, object body, bool isJson, int mode)
        {
            Request = request;
            Body = body;
            IsJson = isJson;
            Mode = mode;
        }

        internal IpcMessage Request { get; }
        public object Body { get; }
        public bool IsJson { get; }
        public int Mode { get; }
    }

    /// <summary>What the worker script calls when it is done with an item (not for users).</summary>
    public sealed class HandlerCompletion
    {
        private readonly SocketRequestHandler _handler;

        internal HandlerCompletion(SocketRequestHandler handler) => _handler = handler;

        public void Complete(HandlerWorkItem item, List<object> replies, object failure) =>
            _handler.Complete(item, replies, failure);
    }
}
