using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

namespace PsIpc.Events
{
    public enum IpcSubscriptionState { Running, Ended }

    /// <summary>
    /// The source object of a Register-IpcMessageEvent subscription (Get-EventSubscriber shows it as SourceObject).
    /// A background thread takes the channel's messages with the public Receive, decodes each with the module's
    /// PayloadCodec and raises one PowerShell engine event per message, in order. It raises the next one only while
    /// fewer than <see cref="Window"/> events are pending (an -Action not yet run, or an event still in the event
    /// queue: Remove-Event takes it out), so a burst waits in the channel, whose bounded queue then holds up the
    /// sender: memory is bounded by the channel's limits plus the window, whatever the number of messages.
    /// Unregister-Event (or Stop-Job of the action) ends the thread and leaves every message not yet raised in the
    /// channel; closing the channel, or the end of its stream, ends the subscription.
    /// </summary>
    [SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
        Justification = "Its thread disposes them when it ends; the engine ends a subscription through Unregister-Event, not Dispose.")]
    public sealed class IpcMessageSubscription
    {
        /// <summary>At most this many events raised and not yet processed.</summary>
        public const int Window = 16;

        internal const string EventName = nameof(MessageReceived);
        internal const string ActionVariable = "PsIpcEventAction";
        internal const string DoneVariable = "PsIpcEventDone";
        internal const string FailedVariable = "PsIpcEventFailed";
        private const int RecentErrorsKept = 10;

        private static readonly TimeSpan ReceiveSlice = TimeSpan.FromSeconds(1);
        private static readonly object RegistryGate = new object();
        private static readonly Dictionary<IpcChannel, IpcMessageSubscription> Registry = new Dictionary<IpcChannel, IpcMessageSubscription>();

        private readonly PSEventManager _events;
        private readonly PSObject? _messageData;
        private readonly object _gate = new object();
        private readonly HashSet<IpcMessageEventArgs> _pending = new HashSet<IpcMessageEventArgs>();
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly PayloadCodec _codec;
        private Runspace? _jsonRunspace;
        private PSEventSubscriber? _subscriber;
        private Thread? _thread;
        private bool _hasAction;
        private bool _unsubscribeWhenIdle;
        private int _stopRequested;
        private int _unregistered;
        private long _raised;
        private long _actionErrors;
        private readonly Queue<ErrorRecord> _recentActionErrors = new Queue<ErrorRecord>();
        private volatile bool _ended;

        private IpcMessageSubscription(IpcChannel channel, string sourceIdentifier, bool envelope, PSObject? messageData, PSEventManager events)
        {
            Channel = channel;
            SourceIdentifier = sourceIdentifier;
            Envelope = envelope;
            _messageData = messageData;
            _events = events;
            _codec = new PayloadCodec(JsonRunspace);
        }

        /// <summary>The channel whose messages become events.</summary>
        public IpcChannel Channel { get; }

        public string SourceIdentifier { get; }

        /// <summary>True when $Event.MessageData is the envelope (-Envelope), false when it is the message itself.</summary>
        public bool Envelope { get; }

        /// <summary>Events raised so far.</summary>
        public long Raised => Interlocked.Read(ref _raised);

        /// <summary>Events raised and not yet processed (their action not yet run, or still in the event queue).</summary>
        public int Pending
        {
            get { lock (_gate) return _pending.Count; }
        }

        /// <summary>Messages whose -Action threw (the subscription went on with the next message).</summary>
        public long ActionErrors => Interlocked.Read(ref _actionErrors);

        /// <summary>The errors of the last few actions that threw, oldest first.</summary>
        public ErrorRecord[] RecentActionErrors
        {
            get { lock (_recentActionErrors) return _recentActionErrors.ToArray(); }
        }

        public IpcSubscriptionState State => _ended ? IpcSubscriptionState.Ended : IpcSubscriptionState.Running;

        /// <summary>Why the subscription ended: unregistered, the channel closed, or its stream ended.</summary>
        public string? EndReason { get; private set; }

        /// <summary>
        /// The event the engine subscribes to. It is never raised as a .NET event: the thread raises engine events
        /// itself (so that $Event.MessageData is the message); removing the handler is how Unregister-Event reaches us.
        /// </summary>
        public event EventHandler<IpcMessageEventArgs>? MessageReceived
        {
            add { }
            remove
            {
                Interlocked.Exchange(ref _unregistered, 1);
                Stop("unregistered", join: true);
            }
        }

        public override string ToString() => $"Messages of '{Channel.Name}'";

        /// <summary>The subscription of a channel, or null: a channel has at most one.</summary>
        internal static IpcMessageSubscription? Of(IpcChannel channel)
        {
            lock (RegistryGate) return Registry.TryGetValue(channel, out IpcMessageSubscription? s) ? s : null;
        }

        /// <summary>
        /// Reserves the channel for a new subscription; null when it has one already. The caller subscribes the engine
        /// to the result (<see cref="EventName"/>) and then calls <see cref="Start"/>, or <see cref="Abandon"/>.
        /// </summary>
        internal static IpcMessageSubscription? Reserve(IpcChannel channel, string sourceIdentifier, bool envelope, PSObject? messageData, PSEventManager events)
        {
            lock (RegistryGate)
            {
                if (Registry.ContainsKey(channel)) return null;
                var subscription = new IpcMessageSubscription(channel, sourceIdentifier, envelope, messageData, events);
                Registry.Add(channel, subscription);
                return subscription;
            }
        }

        internal void Abandon()
        {
            lock (RegistryGate) Registry.Remove(Channel);
        }

        /// <summary>
        /// Starts the thread. With an action, the engine bound the wrapper (see the cmdlet) to a module of its own:
        /// the user's action is bound to that module too, and the wrapper's last assignment tells us it ran.
        /// </summary>
        internal void Start(PSEventSubscriber subscriber, ScriptBlock? action)
        {
            _subscriber = subscriber;
            if (action != null)
            {
                PSModuleInfo module = subscriber.Action.Module;
                module.SessionState.PSVariable.Set(ActionVariable, module.NewBoundScriptBlock(action));
                module.SessionState.PSVariable.Set(new CompletionVariable(DoneVariable, OnProcessed));
                module.SessionState.PSVariable.Set(new CompletionVariable(FailedVariable, OnActionFailed));
                _hasAction = true;
            }
            Channel.Closed += OnChannelClosed;
            _thread = new Thread(Run) { IsBackground = true, Name = $"PsIpc events: {SourceIdentifier}" };
            _thread.Start();
            if (Channel.IsClosed) OnChannelClosed(Channel, EventArgs.Empty); // closed before we listened
        }

        private void OnChannelClosed(object? sender, EventArgs e) => Stop("the channel was closed", join: false);

        private void Stop(string reason, bool join)
        {
            if (Interlocked.Exchange(ref _stopRequested, 1) == 0)
            {
                EndReason = reason;
                _stop.Cancel();
                lock (_gate) Monitor.PulseAll(_gate);
            }
            Thread? thread = _thread;
            // Unregister-Event waits until the thread has put back what it took, so that Receive-IpcMessage works next.
            // (An action that runs on this thread, when the engine was idle, may unregister too: no join with itself.)
            if (join && thread != null && thread != Thread.CurrentThread) thread.Join(TimeSpan.FromSeconds(10));
        }

        private void Run()
        {
            var batch = new List<IpcMessage>(Window);
            try
            {
                while (true)
                {
                    int room = WaitForRoom();
                    if (room == 0) break;
                    batch.Clear();
                    int taken;
                    try
                    {
                        taken = Channel.Receive(batch, room, Deadline.After(ReceiveSlice), _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                    if (taken == 0) continue;
                    if (taken < 0)
                    {
                        EndReason = Channel.IsClosed ? "the channel was closed" : "the channel's stream ended: its peers are gone";
                        break;
                    }
                    for (int i = 0; i < taken; i++)
                    {
                        if (_stop.IsCancellationRequested)
                        {
                            Channel.ReturnUnreceived(batch, i); // not raised: stays in the channel
                            break;
                        }
                        Raise(batch[i]);
                    }
                }
            }
            catch (IpcException e)
            {
                if (EndReason == null) EndReason = e.Kind == IpcErrorKind.ChannelClosed ? "the channel was closed" : e.Message;
            }
            catch (Exception e) when (e is ObjectDisposedException || e is InvalidOperationException || e is RuntimeException)
            {
                // The runspace that receives the events is closing: nothing more can be raised.
                if (EndReason == null) EndReason = e.Message;
            }
            finally
            {
                Finish();
                _stop.Dispose();
            }
        }

        /// <summary>Waits until fewer than <see cref="Window"/> events are pending; 0 when the subscription stops.</summary>
        private int WaitForRoom()
        {
            int sleep = 1;
            while (true)
            {
                if (_stop.IsCancellationRequested) return 0;
                // Events in the queue have no completion signal: Remove-Event takes them out, so look for them.
                if (!_hasAction) ForgetRemovedEvents();
                lock (_gate)
                {
                    if (_stop.IsCancellationRequested) return 0;
                    int room = Window - _pending.Count;
                    if (room > 0) return room;
                    Monitor.Wait(_gate, _hasAction ? 1000 : sleep);
                }
                sleep = Math.Min(sleep * 2, 50);
            }
        }

        private void ForgetRemovedEvents()
        {
            var queued = new HashSet<IpcMessageEventArgs>();
            lock (_events.ReceivedEvents.SyncRoot)
            {
                foreach (PSEventArgs e in _events.ReceivedEvents)
                {
                    if (e.SourceEventArgs is IpcMessageEventArgs args) queued.Add(args);
                }
            }
            lock (_gate) _pending.RemoveWhere(args => !queued.Contains(args));
        }

        private void Raise(IpcMessage message)
        {
            if (message.IsEndOfInput) return; // a Line/Raw client's half-close: no message
            IpcMessageEventArgs args;
            object? data;
            bool decoded = false;
            if (message.Fault != null)
            {
                ErrorRecord record = ErrorMapping.ToErrorRecord(message.Fault);
                args = new IpcMessageEventArgs(null, record, _messageData);
                data = record;
            }
            else
            {
                try
                {
                    object? body = _codec.Decode(message);
                    var envelope = new IpcEnvelope(body, message.Sender, Channel, message);
                    args = new IpcMessageEventArgs(envelope, null, _messageData);
                    data = Envelope ? envelope : body;
                    decoded = true;
                }
                catch (Exception e) when (PayloadCodec.IsDecodeFailure(e))
                {
                    Channel.Reject(message, e); // a transport that can dead-letter it keeps it there
                    ErrorRecord record = ErrorMapping.ToErrorRecord(e, "DecodeFailed", ErrorCategory.InvalidData, Channel.Name);
                    args = new IpcMessageEventArgs(null, record, _messageData);
                    data = record;
                }
            }
            lock (_gate) _pending.Add(args); // before raising: an action may run (and finish) inside GenerateEvent
            // In this thread, so that events keep the channel's order (the engine's default hands each to the thread pool).
            _events.GenerateEvent(SourceIdentifier, Channel, new object[] { Channel, args }, data == null ? null : PSObject.AsPSObject(data), true, false);
            Interlocked.Increment(ref _raised);
            if (decoded) Channel.Acknowledge(message); // handed to the engine: a transport with acknowledgements confirms it
        }

        /// <summary>The -Action threw for one event (on the pipeline thread): keep the error, go on.</summary>
        private void OnActionFailed(object? value)
        {
            if (!((value is PSObject pso ? pso.BaseObject : value) is ErrorRecord record)) return;
            Interlocked.Increment(ref _actionErrors);
            lock (_recentActionErrors)
            {
                if (_recentActionErrors.Count == RecentErrorsKept) _recentActionErrors.Dequeue();
                _recentActionErrors.Enqueue(record);
            }
        }

        /// <summary>The wrapper of an -Action ran to its end for one event (on the pipeline thread).</summary>
        private void OnProcessed(object? value)
        {
            object? e = value is PSObject pso ? pso.BaseObject : value;
            if (!((e as PSEventArgs)?.SourceEventArgs is IpcMessageEventArgs args)) return;
            bool unsubscribe;
            lock (_gate)
            {
                _pending.Remove(args);
                Monitor.PulseAll(_gate);
                unsubscribe = _unsubscribeWhenIdle && _pending.Count == 0;
                if (unsubscribe) _unsubscribeWhenIdle = false;
            }
            if (unsubscribe) Unsubscribe();
        }

        private void Finish()
        {
            Interlocked.Exchange(ref _stopRequested, 1); // nothing left to stop: _stop is disposed next
            Channel.Closed -= OnChannelClosed;
            _codec.Dispose();
            _jsonRunspace?.Dispose();
            lock (RegistryGate) Registry.Remove(Channel);
            try
            {
                if (Volatile.Read(ref _unregistered) != 0) return;
                // The channel closed or its stream ended: the subscription ends too. An action still pending runs
                // first: the engine runs pending actions of a subscription it removes on the removing thread, which
                // must be the pipeline thread, so the last of them removes it.
                lock (_gate)
                {
                    if (_hasAction && _pending.Count > 0)
                    {
                        _unsubscribeWhenIdle = true;
                        return;
                    }
                }
                Unsubscribe();
            }
            finally
            {
                _ended = true;
            }
        }

        private void Unsubscribe()
        {
            PSEventSubscriber? subscriber = _subscriber;
            if (subscriber == null) return;
            try
            {
                _events.UnsubscribeEvent(subscriber);
            }
            catch (Exception e) when (e is ObjectDisposedException || e is InvalidOperationException)
            {
                // The runspace is closing and removes its subscriptions itself.
            }
        }

        private Runspace JsonRunspace()
        {
            if (_jsonRunspace == null)
            {
                Runspace runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
                runspace.Open();
                _jsonRunspace = runspace;
            }
            return _jsonRunspace;
        }
    }
}
