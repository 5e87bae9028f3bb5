using System;
using System.Management.Automation;
using PsIpc.Transport.Framing;

namespace PsIpc
{
    /// <summary>
    /// A command that sends PowerShell values (Send-IpcMessage, Invoke-IpcRequest, Update-SharedMemory): the
    /// -Format, -Depth and -TimeoutSeconds parameters, one codec per command, and one way to report a value that
    /// cannot be encoded or a decoded reply that is not what its format claims.
    /// </summary>
    public abstract class EncodingCmdlet : IpcCmdlet
    {
        private readonly DepthProbe _depthProbe = new DepthProbe();

        [Parameter]
        public PayloadFormat Format { get; set; } = PayloadFormat.Auto;

        [Parameter]
        [ValidateRange(1, 100)]
        public int Depth { get; set; } = 2;

        /// <summary>How long each wait may take (omitted: forever; 0: only what needs no waiting).</summary>
        [Parameter]
        [Alias("TimeoutSec")]
        [ValidateRange(0, int.MaxValue)]
        public double TimeoutSeconds { get; set; }

        internal PayloadCodec Codec { get; } = new PayloadCodec();

        /// <summary>
        /// Encodes <paramref name="value"/> as -Format and -Depth say; false after writing EncodeFailed (the command
        /// goes on with its next item). A CliXml value that -Depth cuts gets a warning that says what is lost.
        /// </summary>
        internal bool TryEncode(object? value, out byte[] payload, out MessageFormat wireFormat) =>
            TryEncode(this, Codec, _depthProbe, value, Format, Depth, "arrives", out payload, out wireFormat);

        /// <summary>
        /// What <see cref="TryEncode(object, out byte[], out MessageFormat)"/> does, for a command whose -Format and
        /// -Depth are its own (Write-SharedMemory: only in one parameter set). <paramref name="outcome"/> ends the
        /// cut warning's "'x' ... without its properties" ("arrives", "is published").
        /// </summary>
        internal static bool TryEncode(Cmdlet command, PayloadCodec codec, DepthProbe depthProbe, object? value,
            PayloadFormat format, int depth, string outcome, out byte[] payload, out MessageFormat wireFormat)
        {
            try
            {
                payload = codec.Encode(value, format, depth, out wireFormat);
            }
            catch (Exception e) when (PayloadCodec.IsEncodeFailure(e))
            {
                command.WriteError(ErrorMapping.ToErrorRecord(e, "EncodeFailed", ErrorCategory.InvalidData, value));
                payload = Array.Empty<byte>();
                wireFormat = MessageFormat.Bytes;
                return false;
            }
            if (wireFormat != MessageFormat.CliXml || value == null) return true;
            // The probe looks at PowerShell objects; a value given as itself (-InputObject @{...}) or an array of
            // pipeline items is wrapped so that it is checked as the serializer will see it.
            string? cut = depthProbe.FindCut(value is PSObject ? value : PSObject.AsPSObject(value), depth);
            if (cut == null) return true;
            string? type = value is PSObject pso && pso.TypeNames.Count > 0 ? pso.TypeNames[0] : value.GetType().FullName;
            command.WriteWarning($"Objects of type {type} are cut at -Depth {depth}: '{cut}' {outcome} without its properties, as its ToString() text. Use a larger -Depth to keep it.");
            return true;
        }

        /// <summary>The error record for a payload that does not decode (DecodeFailed), about <paramref name="target"/>.</summary>
        internal static ErrorRecord DecodeError(Exception e, object? target) =>
            ErrorMapping.ToErrorRecord(e, "DecodeFailed", ErrorCategory.InvalidData, target);

        protected override void StopProcessing()
        {
            base.StopProcessing();
            Codec.Dispose();
        }

        protected override void EndProcessing() => Codec.Dispose();
    }
}
