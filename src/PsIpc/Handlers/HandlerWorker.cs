using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Handlers
{
    /// <summary>
    /// One runspace of a <see cref="RequestHandler"/>, running its loop until the handler stops. The worker
    /// script calls <see cref="Decode"/> and <see cref="Complete"/> (public for that; not for users), so a
    /// message is decoded and its replies encoded on this runspace's thread, with this worker's own
    /// <see cref="PayloadCodec"/>: JSON goes through this runspace and CliXml is read with its type table.
    /// </summary>
    [SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
        Justification = "Its life ends in Stop, which the handler calls once and which disposes them with the runspace.")]
    public sealed class HandlerWorker
    {
        // Runs once in each worker runspace, for the handler's lifetime: creates the script block from its
        // text (a script block belongs to the runspace that created it) and then handles one message after
        // the other. Invoking a script block in a running loop costs microseconds; a PowerShell invocation
        // per message cost about half a millisecond to several. The script block is called with
        // InvokeReturnAsIs: in this loop, which PowerShell keeps interpreting, `& $handler $body 2>&1` cost
        // 35-50 us a message and InvokeReturnAsIs about 10 us. Its errors then go to this pipeline's error
        // stream (read and cleared by Complete) instead of being merged into the output; a terminating one
        // is caught here. Everything else happens in C#: the fewer statements here, the less PowerShell interprets.
        private const string WorkerScript = @"
param([string] $PsIpcHandlerText, $PsIpcWork, $PsIpcWorker)
$PsIpcHandler = [scriptblock]::Create($PsIpcHandlerText)
foreach ($PsIpcRequest in $PsIpcWork.GetConsumingEnumerable()) {
    $PsIpcOutput = $null
    $PsIpcFailure = $null
    try { $PsIpcOutput = $PsIpcHandler.InvokeReturnAsIs($PsIpcWorker.Decode($PsIpcRequest)) }
    catch { $PsIpcFailure = $_ }
    $PsIpcWorker.Complete($PsIpcRequest, $PsIpcOutput, $PsIpcFailure)
}
";

        private readonly RequestHandler _handler;
        private readonly Runspace _runspace;
        private readonly PowerShell _shell;
        private readonly PayloadCodec _codec = new PayloadCodec();
        private readonly List<object> _replies = new List<object>();
        private readonly ManualResetEventSlim _started = new ManualResetEventSlim(false);
        private IAsyncResult? _running;

        internal HandlerWorker(RequestHandler handler)
        {
            _handler = handler;
            _runspace = RunspaceFactory.CreateRunspace(handler.SessionState);
            _shell = PowerShell.Create();
            _shell.Runspace = _runspace;
            _shell.AddScript(WorkerScript, useLocalScope: true)
                .AddArgument(handler.HandlerText).AddArgument(handler.Work).AddArgument(this);
            // Opening a runspace takes a while: not on the dispatcher's thread. Messages wait in the queue.
            ThreadPool.QueueUserWorkItem(_ =>
            {
                try
                {
                    _runspace.Open();
                    _running = _shell.BeginInvoke();
                }
                catch (Exception e) when (!(e is OutOfMemoryException))
                {
                    if (!handler.IsStopped) handler.RecordError(e);
                }
                finally
                {
                    _started.Set();
                }
            });
        }

        /// <summary>The message's body as the script block gets it (called by the worker script).</summary>
        public object? Decode(IpcMessage request) => _codec.Decode(request);

        /// <summary>The script block is done with a message (called by the worker script, whatever happened).</summary>
        public void Complete(IpcMessage request, object? output, object? failure) => _handler.Complete(this, request, output, failure);

        /// <summary>
        /// Counts the failure, if any (a throw, an ErrorRecord in the output, or a written error), and sends every
        /// other output item to the request's sender: replies written before a failure still go out.
        /// </summary>
        internal void Answer(IpcMessage request, object? output, object? failure)
        {
            try
            {
                Collect(output, ref failure);
                PSDataCollection<ErrorRecord> errors = _shell.Streams.Error;
                if (errors.Count > 0)
                {
                    failure ??= errors[0];
                    errors.Clear();
                }
                if (failure != null) _handler.RecordFailure(failure);
                foreach (object reply in _replies)
                {
                    if (!Send(request.Sender, reply)) return;
                }
            }
            finally
            {
                _replies.Clear(); // holds no reply past its message
            }
        }

        /// <summary>Stops the runspace: idle workers end when the queue completes; one still running after a second is stopped.</summary>
        internal void Stop()
        {
            try
            {
                _started.Wait(10000);
                if (_running != null && !_running.AsyncWaitHandle.WaitOne(1000)) _shell.Stop();
            }
            catch (Exception e) when (e is InvalidOperationException || e is ObjectDisposedException || e is PSInvalidOperationException) { }
            _codec.Dispose();
            _shell.Dispose();
            _runspace.Dispose();
            _started.Dispose();
        }

        /// <summary>
        /// Which format a reply takes: strings and byte[] go as themselves; other objects as text when the server's
        /// framing carries no format (Line, Raw), as JSON to a sender that may not exchange CliXml (an
        /// unauthenticated peer could not decode it either), otherwise as CliXml.
        /// </summary>
        internal static PayloadFormat FormatFor(object reply, IpcChannel sender, bool textReplies)
        {
            object value = reply is PSObject wrapped ? wrapped.BaseObject : reply;
            if (value is string || value is byte[]) return PayloadFormat.Auto;
            if (textReplies) return PayloadFormat.Text;
            return PayloadCodec.AcceptsCliXmlFrom(sender) ? PayloadFormat.CliXml : PayloadFormat.Json;
        }

        // The script block's output, as InvokeReturnAsIs gives it (nothing, one object, or an array), enumerated
        // as a foreach over it would: nulls skipped, ErrorRecords (e.g. 2>&1) taken as the failure, not sent.
        private void Collect(object? output, ref object? failure)
        {
            if (output == null) return;
            // A lone byte[] is one output item (`,$bytes` or Write-Output -NoEnumerate; a plain `$bytes` reaches
            // here already unrolled, as an array of bytes): one message, not one per byte.
            IEnumerable? items = (output is PSObject boxed ? boxed.BaseObject : output) is byte[] ? null : LanguagePrimitives.GetEnumerable(output);
            if (items == null)
            {
                Add(output, ref failure);
                return;
            }
            foreach (object? item in items) Add(item, ref failure);
        }

        private void Add(object? item, ref object? failure)
        {
            if (item == null) return;
            if ((item is PSObject wrapped ? wrapped.BaseObject : item) is ErrorRecord)
            {
                failure ??= item;
                return;
            }
            _replies.Add(item);
        }

        /// <summary>Sends one reply; false when the sender is gone (nobody to send the rest to).</summary>
        private bool Send(IpcChannel sender, object reply)
        {
            byte[] payload;
            MessageFormat format;
            try
            {
                payload = _codec.Encode(reply, FormatFor(reply, sender, _handler.TextReplies), _handler.Depth, out format);
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                _handler.RecordError(e); // this reply cannot be encoded; the next ones may
                return true;
            }
            try
            {
                sender.Send(format, payload, Deadline.After(sender.Options.CloseTimeout), CancellationToken.None);
                return true;
            }
            catch (IpcException)
            {
                return false; // the client left (or stopped reading): nobody to reply to
            }
        }
    }
}
