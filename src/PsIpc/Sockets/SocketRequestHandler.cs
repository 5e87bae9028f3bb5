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

        // Runs in a pool runspace: decodes JSON there (ConvertFrom-Json needs a runspace), runs the handler
        // from its text (a script block belongs to the runspace that created it), and shapes the replies:
        // mode 0 keeps objects (sent as CliXml), 1 turns them into JSON (a peer that may not send or
        // receive CliXml), 2 into text (Line and Raw framing).
        private const string Wrapper = @"
param([string] $PsIpcHandlerText, $PsIpcBody, [bool] $PsIpcBodyIsJson, [int] $PsIpcReplyMode)
if ($PsIpcBodyIsJson) { $PsIpcBody = ConvertFrom-Json -InputObject $PsIpcBody }
foreach ($PsIpcReply in & ([scriptblock]::Create($PsIpcHandlerText)) $PsIpcBody) {
    if ($null -eq $PsIpcReply) { continue }
    if ($PsIpcReply -is [string] -or $PsIpcReply -is [byte[]] -or $PsIpcReplyMode -eq 0) { ,$PsIpcReply }
    elseif ($PsIpcReplyMode -eq 2) { [string]$PsIpcReply }
    else { [pscustomobject]@{ PSTypeName = 'PsIpc.JsonReply'; Json = (ConvertTo-Json -InputObject $PsIpcReply -Compress -Depth 2) } }
}
";

        private readonly SocketServerChannel _server;
        private readonly string _handlerText;
        private readonly RunspacePool _pool;
        private readonly Thread _dispatcher;
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly object _gate = new object();
        private readonly Dictionary<IpcChannel, Queue<IpcMessage>> _bySender = new Dictionary<IpcChannel, Queue<IpcMessage>>();
        private readonly HashSet<PowerShell> _running = new HashSet<PowerShell>();
        private int _waiting;
        private long _waitingBytes; // payload bytes of the messages in _bySender's queues
        private long _handled;
        private int _stopped;

        /// <param name="languageMode">The caller's: handlers must not run in a fuller language than the
        /// session that started the server (ConstrainedLanguage stays constrained).</param>
        public SocketRequestHandler(SocketServerChannel server, ScriptBlock scriptBlock, int throttleLimit, PSLanguageMode languageMode)
        {
            _server = server;
            _handlerText = scriptBlock.ToString();
            ThrottleLimit = throttleLimit;
            InitialSessionState sessionState = InitialSessionState.CreateDefault();
            sessionState.LanguageMode = languageMode;
            _pool = RunspaceFactory.CreateRunspacePool(sessionState);
            _pool.SetMinRunspaces(1);
            _pool.SetMaxRunspaces(throttleLimit);
            _pool.Open();
            _dispatcher = new Thread(Dispatch, 256 * 1024) { IsBackground = true, Name = $"PsIpc handler {server.Name}" };
            server.Closing += (_, deadline) => Stop(deadline);
            _dispatcher.Start();
        }

        /// <summary>Runspaces handling messages at the same time, at most.</summary>
        public int ThrottleLimit { get; }

        /// <summary>Messages the script block has finished with (failed ones included).</summary>
        public long MessagesHandled => Interlocked.Read(ref _handled);

        /// <summary>Messages being handled right now.</summary>
        public int Busy { get { lock (_gate) return _running.Count; } }

        public override string ToString() => $"{{ {_handlerText.Trim()} }} (ThrottleLimit {ThrottleLimit})";

        /// <summary>Stops taking messages, waits for the running ones until the deadline, then stops them and closes the pool.</summary>
        public void Stop(Deadline deadline)
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
            _stop.Cancel();
            _dispatcher.Join(TimeSpan.FromSeconds(5));
            lock (_gate)
            {
                foreach (Queue<IpcMessage> queue in _bySender.Values) queue.Clear();
                while (_running.Count > 0)
                {
                    int ms = deadline.RemainingMilliseconds;
                    if (ms == 0) break;
                    Monitor.Wait(_gate, ms < 0 ? 1000 : Math.Min(ms, 1000));
                }
                foreach (PowerShell ps in _running)
                {
                    try { ps.BeginStop(null, null); } catch (Exception e) when (e is InvalidOperationException || e is ObjectDisposedException) { }
                }
            }
            _pool.Dispose();
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
                    if (_server.Receive(batch, 64, Deadline.Infinite, token) < 0) return;
                    foreach (IpcMessage message in batch)
                    {
                        if (message.Fault != null) continue; // counted by the server (ConnectionErrors)
                        lock (_gate)
                        {
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
                PowerShell ps = null;
                try
                {
                    object body = Decode(message, out bool isJson);
                    int mode = _server.Framing != SocketFraming.LengthPrefixed ? 2 : IsAuthenticated(message.Sender) ? 0 : 1;
                    ps = PowerShell.Create();
                    ps.RunspacePool = _pool;
                    ps.AddScript(Wrapper, useLocalScope: true)
                        .AddArgument(_handlerText).AddArgument(body).AddArgument(isJson).AddArgument(mode);
                    var output = new PSDataCollection<PSObject>();
                    lock (_gate) _running.Add(ps);
                    PowerShell invoked = ps;
                    IpcMessage request = message;
                    ps.BeginInvoke<PSObject, PSObject>(null, output, null, ar => Completed(invoked, output, request, ar), null);
                    return; // Completed runs this client's next message
                }
                catch (Exception e) when (!(e is OutOfMemoryException))
                {
                    // Could not start (undecodable body, pool closed): count it, go on with this client's next message.
                    if (ps != null)
                    {
                        lock (_gate) _running.Remove(ps);
                        ps.Dispose();
                    }
                    if (Volatile.Read(ref _stopped) == 0) _server.RecordHandlerError(e);
                    Interlocked.Increment(ref _handled);
                    message = Next(message.Sender);
                }
            }
        }

        private void Completed(PowerShell ps, PSDataCollection<PSObject> output, IpcMessage request, IAsyncResult result)
        {
            // Whatever happens here, this client's next message must run: a lost turn would stall the client.
            try
            {
                bool failed = false;
                try
                {
                    ps.EndInvoke(result);
                }
                catch (Exception e) when (!(e is OutOfMemoryException))
                {
                    failed = true;
                    if (Volatile.Read(ref _stopped) == 0) _server.RecordHandlerError(e);
                }
                if (!failed && ps.Streams.Error.Count > 0)
                {
                    ErrorRecord first = ps.Streams.Error[0];
                    _server.RecordHandlerError(first.Exception ?? new RuntimeException(first.ToString()));
                }
                if (!failed) Reply(request, output);
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                _server.RecordHandlerError(e); // a reply that could not be encoded
            }
            finally
            {
                output.Dispose();
                lock (_gate) _running.Remove(ps);
                ps.Dispose();
                Interlocked.Increment(ref _handled);
            }
            IpcMessage next = Next(request.Sender);
            if (next != null) Run(next);
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

        private void Reply(IpcMessage request, PSDataCollection<PSObject> output)
        {
            foreach (PSObject item in output)
            {
                if (item == null) continue;
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
    }
}
