using System;
using System.Management.Automation;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Commands
{
    /// <summary>
    /// Sends each pipeline item as one request and writes the reply to it: one call per round trip. Against a
    /// PsIpc peer of this version the reply is matched by a correlation id (several requests may be in flight from
    /// other threads, and a late reply is dropped); against other peers the reply is the next message received.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Invoke, "IpcRequest")]
    [OutputType(typeof(object))]
    [OutputType(typeof(IpcEnvelope))]
    public sealed class InvokeIpcRequestCommand : EncodingCmdlet
    {
        [Parameter(Mandatory = true, Position = 0)]
        [ChannelTransformation]
        [ArgumentCompleter(typeof(RequestingChannelCompleter))]
        [ValidateNotNull]
        public IpcChannel Channel { get; set; } = null!; // mandatory: bound before BeginProcessing

        [Parameter(Position = 1, ValueFromPipeline = true)]
        [AllowNull]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public object? InputObject { get; set; }

        [Parameter]
        public SwitchParameter Envelope { get; set; }

        protected override void BeginProcessing()
        {
            if (!Channel.CanSend) ThrowIpcError(Channel.NotSupportedError(ChannelOperation.Send));
            if (!Channel.CanReceive) ThrowIpcError(Channel.NotSupportedError(ChannelOperation.Receive));
            // A server, or a channel that would read its own request back (a shared memory queue): refused before any input is sent.
            if (!Channel.CanRequest) ThrowIpcError(Channel.NotSupportedError(ChannelOperation.Request));
        }

        protected override void ProcessRecord()
        {
            // Without pipeline input and without -InputObject there is nothing to ask.
            if (!MyInvocation.ExpectingInput && !MyInvocation.BoundParameters.ContainsKey(nameof(InputObject))) return;
            if (!TryEncode(InputObject, out byte[] payload, out MessageFormat wireFormat)) return;
            IpcMessage? reply;
            try
            {
                if (!Channel.TryRequest(wireFormat, payload, DeadlineFrom(TimeoutSeconds), CancelToken, out reply))
                {
                    WriteIpcError(new IpcException(IpcErrorKind.ReceiveTimeout,
                        $"Timed out after {TimeoutSeconds} s waiting for the reply to a request on '{Channel.Name}'.", Channel.Name));
                    return;
                }
            }
            catch (IpcException e) when (e.Kind == IpcErrorKind.HandlerFailed)
            {
                // The peer's handler failed on this request: this request's error; the next ones go on.
                WriteIpcError(new IpcException(e.Kind, $"The handler of '{Channel.Name}' failed on this request: {e.Message}", Channel.Name, e));
                return;
            }
            catch (IpcException e)
            {
                ReportIpcError(e);
                return;
            }
            catch (OperationCanceledException)
            {
                return; // Ctrl+C: PowerShell reports the stop
            }
            WriteReply(reply!);
        }

        private void WriteReply(IpcMessage reply)
        {
            object? body;
            try
            {
                body = Codec.Decode(reply);
            }
            catch (Exception e) when (PayloadCodec.IsDecodeFailure(e))
            {
                Channel.Reject(reply, e);
                WriteError(DecodeError(e, Channel.Name));
                return;
            }
            if (Envelope) WriteObject(new IpcEnvelope(body, reply.Sender, Channel, reply));
            // A handler's several output items come as one collection: written one by one, as a function's output.
            // Bytes and text are never unrolled.
            else WriteObject(body, reply.Format == MessageFormat.CliXml || reply.Format == MessageFormat.Json);
            Channel.Acknowledge(reply);
        }
    }
}
