# Request/reply rows (bench/lib/BenchRequest.ps1), asking side: connects to the server's pipe and times
# $Count round trips after untimed ones: at least $WarmUp and for at least $WarmUpSeconds, so that the runtime's
# tiered JIT has settled (the first seconds of a loop recompile PowerShell's and the module's hot methods: measured
# at 116 -> 42 us of client CPU per Invoke-IpcRequest trip over the first six blocks of 5,000, about 4 s).
#   -Mode Cmdlet: a script loop, `$reply = Invoke-IpcRequest $pipe 'ping'`; then, in the same process, the
#     same loop calling a compiled no-op cmdlet with the same arguments (the floor of any one-cmdlet loop).
#   -Mode Method: a compiled C# loop calling $pipe.Request(...) (no PowerShell per round trip).
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Name,
    [Parameter(Mandatory)] [ValidateSet('Cmdlet', 'Method')] [string] $Mode,
    [Parameter(Mandatory)] [int] $Count,
    [int] $WarmUp = 500,
    [double] $WarmUpSeconds = 3
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$transport = [PsIpc.Transport.Channels.IpcChannel].Assembly.Location
$compiled = Add-Type -PassThru -ReferencedAssemblies $transport, 'netstandard', 'System.Runtime', 'System.Threading', 'System.Text.Encoding.Extensions', 'System.Management.Automation' -TypeDefinition @'
using System.Diagnostics;
using System.Management.Automation;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

public static class BenchRequester
{
    private static readonly byte[] Ping = System.Text.Encoding.UTF8.GetBytes("ping");

    // Seconds for $count requests; throws when a reply is not the echo.
    public static double Run(IpcChannel channel, int count)
    {
        var stopwatch = Stopwatch.StartNew();
        IpcMessage reply = null;
        for (int i = 0; i < count; i++) reply = channel.Request(MessageFormat.Text, Ping, Deadline.Infinite, CancellationToken.None);
        stopwatch.Stop();
        if (count > 0 && reply.GetText() != "ping") throw new System.InvalidOperationException("the echo answered " + reply.GetText());
        return stopwatch.Elapsed.TotalSeconds;
    }
}

[Cmdlet(VerbsLifecycle.Invoke, "BenchNoOpRequest")]
public sealed class InvokeBenchNoOpRequestCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    public object Channel { get; set; }

    [Parameter(Position = 1, ValueFromPipeline = true)]
    public object InputObject { get; set; }

    protected override void ProcessRecord() { }
}
'@
Import-Module -Assembly ($compiled | Where-Object Name -EQ 'InvokeBenchNoOpRequestCommand').Assembly

$pipe = New-IpcPipe -Name $Name -Connect -TimeoutSeconds 60
$result = [ordered]@{ messages = $Count }
try {
    if ($Mode -eq 'Method') {
        $warming = [System.Diagnostics.Stopwatch]::StartNew()
        do { $null = [BenchRequester]::Run($pipe, $WarmUp) } while ($warming.Elapsed.TotalSeconds -lt $WarmUpSeconds)
        $result.seconds = [BenchRequester]::Run($pipe, $Count)
    }
    else {
        $warming = [System.Diagnostics.Stopwatch]::StartNew()
        for ($i = 0; $i -lt $WarmUp -or $warming.Elapsed.TotalSeconds -lt $WarmUpSeconds; $i++) { $reply = Invoke-IpcRequest $pipe 'ping' }
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        for ($i = 0; $i -lt $Count; $i++) { $reply = Invoke-IpcRequest $pipe 'ping' }
        $result.seconds = $stopwatch.Elapsed.TotalSeconds
        if ($reply -ne 'ping') { throw "the echo answered '$reply' instead of 'ping'" }
        $warming = [System.Diagnostics.Stopwatch]::StartNew()
        for ($i = 0; $i -lt $WarmUp -or $warming.Elapsed.TotalSeconds -lt $WarmUpSeconds; $i++) { $reply = Invoke-BenchNoOpRequest $pipe 'ping' }
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        for ($i = 0; $i -lt $Count; $i++) { $reply = Invoke-BenchNoOpRequest $pipe 'ping' }
        $result.floorSeconds = $stopwatch.Elapsed.TotalSeconds
    }
    $result.lateRepliesDropped = $pipe.LateRepliesDropped
}
finally {
    Close-IpcChannel $pipe
}
Write-BenchResult $result
