# Request/reply rows (bench/lib/BenchRequest.ps1), asking side: connects to the server's pipe and times
# $Count round trips after untimed ones: at least $WarmUp and for at least $WarmUpSeconds, so that the runtime's
# tiered JIT has settled (the first seconds of a loop recompile PowerShell's and the module's hot methods: measured
# at 116 -> 42 us of client CPU per Invoke-IpcRequest trip over the first six blocks of 5,000, about 4 s).
#   -Mode Cmdlet: a script loop, `$reply = Invoke-IpcRequest $pipe 'ping'`, in turns (blocks of about a tenth) with
#     the same trips from a compiled C# loop and the same script loop calling a compiled no-op cmdlet with the same
#     arguments (the floor of any one-cmdlet loop): seconds, csharpSeconds, floorSeconds.
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
        # The cmdlet loop, the same trip from C# and the floor loop take turns in blocks, so that all three are timed
        # in the same minutes of the same processes: the per-call cost (cmdlet trip minus C# trip, against the floor)
        # is a difference of two trips, and two processes' trips differ from run to run by more than it (how the
        # scheduler placed the two spinning threads; another process's burst).
        $blocks = [Math]::Max(1, [Math]::Min(10, [int]($Count / 100)))
        $sizes = @(for ($b = 0; $b -lt $blocks; $b++) { [int]([Math]::Floor($Count * ($b + 1) / $blocks) - [Math]::Floor($Count * $b / $blocks)) })
        $warming = [System.Diagnostics.Stopwatch]::StartNew()
        for ($i = 0; $i -lt $WarmUp -or $warming.Elapsed.TotalSeconds -lt $WarmUpSeconds; $i++) {
            $reply = Invoke-IpcRequest $pipe 'ping'
            $null = [BenchRequester]::Run($pipe, 1)
            $reply = Invoke-BenchNoOpRequest $pipe 'ping'
        }
        $result.seconds = 0.0; $result.csharpSeconds = 0.0; $result.floorSeconds = 0.0
        foreach ($size in $sizes) {
            $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
            for ($i = 0; $i -lt $size; $i++) { $reply = Invoke-IpcRequest $pipe 'ping' }
            $result.seconds += $stopwatch.Elapsed.TotalSeconds
            if ($reply -ne 'ping') { throw "the echo answered '$reply' instead of 'ping'" }
            $result.csharpSeconds += [BenchRequester]::Run($pipe, $size)
            $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
            for ($i = 0; $i -lt $size; $i++) { $reply = Invoke-BenchNoOpRequest $pipe 'ping' }
            $result.floorSeconds += $stopwatch.Elapsed.TotalSeconds
        }
    }
    $result.lateRepliesDropped = $pipe.LateRepliesDropped
}
finally {
    Close-IpcChannel $pipe
}
Write-BenchResult $result
