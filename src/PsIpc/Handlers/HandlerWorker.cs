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
    /// One runspace of a <see cref="RequestHandler"/>. Its pipeline runs one compiled command
    /// (<see cref="HandlerLoopCommand"/>) for the handler's lifetime, which takes requests from the server itself
    /// (no dispatcher thread between), decodes each, calls the script block with InvokeReturnAsIs and answers on
    /// this thread, with this worker's own <see cref="PayloadCodec"/>: JSON goes through this runspace and CliXml is
    /// read with its type table. Public only because the loop command is handed it; not for users.
    /// </summary>
    [SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
        Justification = "Its life ends in Stop, which the handler calls once and which disposes them with the runspace.")]
    public sealed class HandlerWorker
    {
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
            _shell.AddCommand(HandlerLoopName).AddParameter(nameof(HandlerLoopCommand.Worker), this);
            // Opening a runspace takes a while: not on the thread that asked for a worker. Requests wait in the server.
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

        internal const string HandlerLoopName = "Invoke-PsIpcHandlerLoop";

        /// <summary>The loop (called by <see cref="HandlerLoopCommand"/> on this runspace's pipeline thread).</summary>
        internal void Run(PSCmdlet loop)
        {
            HandlerScript script = _handler.Script;
            foreach (KeyValuePair<string, object?> value in script.UsingValues) loop.SessionState.PSVariable.Set(value.Key, value.Value);
            ScriptBlock handler = ScriptBlock.Create(script.Text); // in this runspace, in its language mode
            object?[] extra = _handler.ArgumentList;
            IpcMessage? request = _handler.Take();
            while (request != null)
            {
                object? output = null;
                object? failure = null;
                try
                {
                    var args = new object?[1 + extra.Length];
                    args[0] = _codec.Decode(request);
                    Array.Copy(extra, 0, args, 1, extra.Length);
                    output = handler.InvokeReturnAsIs(args);
                }
                catch (PipelineStoppedException) when (_handler.IsStopped)
                {
                    return;
                }
                catch (Exception e) when (!(e is OutOfMemoryException))
                {
                    failure = e;
                }
                request = _handler.Complete(this, request, output, failure);
                if (request == null) request = _handler.Take();
            }
        }

        /// <summary>
        /// Counts the failure, if any (a throw, an ErrorRecord in the output, or a written error), and answers: a
        /// request with an id (Invoke-IpcRequest) gets one reply, all output in one message, or the failure
        /// (HandlerFailed); a plain message gets one message per output item, then the failure where the peer can
        /// be told.
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
                Exception? error = failure != null ? _handler.RecordFailure(failure) : null;
                IpcChannel sender = request.Sender;
                if (request.CorrelationId != 0)
                {
                    if (error != null) ReplyError(request, error);
                    else Reply(request, _replies.Count == 0 ? null : _replies.Count == 1 ? _replies[0] : _replies.ToArray());
                    return;
                }
                foreach (object reply in _replies)
                {
                    if (!Reply(request, reply)) return;
                }
                if (error != null) ReplyError(request, error);
            }
            finally
            {
                _replies.Clear(); // holds no reply past its message
            }
        }

        /// <summary>Stops the runspace: idle workers end when the handler stops; one still running after a second is stopped.</summary>
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
        internal static PayloadFormat FormatFor(object? reply, IpcChannel sender, bool textReplies)
        {
            object? value = reply is PSObject wrapped ? wrapped.BaseObject : reply;
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
        private bool Reply(IpcMessage request, object? reply)
        {
            IpcChannel sender = request.Sender;
            byte[] payload;
            MessageFormat format;
            try
            {
                payload = _codec.Encode(reply, FormatFor(reply, sender, _handler.TextReplies), _handler.Depth, out format);
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                _handler.RecordError(e); // this reply cannot be encoded; the next ones may
                if (request.CorrelationId != 0) ReplyError(request, e);
                return true;
            }
            try
            {
                sender.Reply(request, format, payload, Deadline.After(sender.Options.CloseTimeout), CancellationToken.None);
                return true;
            }
            catch (IpcException)
            {
                return false; // the client left (or stopped reading): nobody to reply to
            }
        }

        // The requester sees the handler's own message (HandlerFailed); a Line/Raw peer or an older PsIpc peer cannot
        // be told and gets nothing for this message (the server still counts it in HandlerErrors).
        private static void ReplyError(IpcMessage request, Exception error)
        {
            IpcChannel sender = request.Sender;
            try
            {
                sender.ReplyError(request, IpcErrorKind.HandlerFailed, error.Message, Deadline.After(sender.Options.CloseTimeout), CancellationToken.None);
            }
            catch (IpcException) { } // gone
        }
    }
}
