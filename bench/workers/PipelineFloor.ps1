# Anchor: PowerShell's own floor in one process, no IPC at all.
#
# -Kind Strings|Objects: how many items per second pwsh moves from a prepared array through
#   - a compiled no-op cmdlet with a ValueFromPipeline parameter (the ceiling of any binary cmdlet
#     fed by the pipeline, e.g. `$data | Send-IpcMessage $p`),
#   - ForEach-Object { } (the usual script consumer),
#   - Measure-BenchStream (the counting sink the receivers of this bench use),
#   - Out-Null (listed for completeness: pwsh compiles `... | Out-Null` into discarding the
#     output, so no item passes through a cmdlet; it is not a ceiling for anything).
# -Kind Loop: how long a script loop takes per iteration when each iteration calls two no-op
#   cmdlets the way the round-trip row calls Send-IpcMessage and Receive-IpcMessage (the floor of
#   any cmdlet-based request/reply loop).
#
# Every consumer first gets untimed warm-up passes for at least half a second (so the JIT has
# tiered up: this is a ceiling), then one timed pass.
param(
    [Parameter(Mandatory)] [ValidateSet('Strings', 'Objects', 'Loop')] [string] $Kind,
    [Parameter(Mandatory)] [int] $Count
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1

$noOpAssembly = Add-Type -PassThru -TypeDefinition @'
using System.Management.Automation;

[Cmdlet(VerbsLifecycle.Invoke, "BenchNoOp")]
public sealed class InvokeBenchNoOpCommand : PSCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true)]
    public object InputObject { get; set; }

    [Parameter]
    public int Count { get; set; }

    protected override void ProcessRecord() { }
}
'@
Import-Module -Assembly $noOpAssembly[0].Assembly

if ($Kind -eq 'Loop') {
    $data = $Count
    $consumers = [ordered]@{
        twoCmdletLoop = {
            param($iterations)
            for ($i = 0; $i -lt $iterations; $i++) {
                Invoke-BenchNoOp 'ping'
                $reply = Invoke-BenchNoOp -Count 1
            }
        }
    }
}
else {
    $data = New-BenchData -Kind $Kind -Count $Count
    $consumers = [ordered]@{
        noOpCmdlet    = { param($items) $items | Invoke-BenchNoOp }
        forEachObject = { param($items) $items | ForEach-Object { } }
        countingSink  = { param($items) $null = $items | Measure-BenchStream }
        outNull       = { param($items) $items | Out-Null }
    }
}

$result = [ordered]@{ messages = $Count }
foreach ($name in $consumers.Keys) {
    $consumer = $consumers[$name]
    $warmUp = [System.Diagnostics.Stopwatch]::StartNew()
    do {
        & $consumer $data
    } while ($warmUp.Elapsed.TotalSeconds -lt 0.5)
    $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
    & $consumer $data
    $result["${name}Seconds"] = $stopwatch.Elapsed.TotalSeconds
}
Write-BenchResult $result
