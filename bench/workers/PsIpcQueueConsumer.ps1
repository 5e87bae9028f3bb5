# PsIpc queue rows (issue 10), consuming side: connects to the bench's private broker with
# Connect-IpcQueue (default -Prefetch unless given) and takes $Count messages with Receive-IpcMessage
# into the counting sink, timed from the first message taken to the last. Each message is acknowledged
# once it was written to the pipeline (the channel batches the acks); Close-IpcChannel sends the last ones.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Uri,
    [Parameter(Mandatory)] [string] $Queue,
    [Parameter(Mandatory)] [int] $Count,
    [int] $Prefetch,
    [double] $TimeoutSeconds = 120
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$settings = @{}
if ($Prefetch -gt 0) { $settings.Prefetch = $Prefetch }
$q = Connect-IpcQueue -Uri $Uri -Queue $Queue -TimeoutSeconds 60 @settings
$process = [System.Diagnostics.Process]::GetCurrentProcess()
$cpu = $process.TotalProcessorTime
try {
    $stream = Receive-IpcMessage $q -Count $Count -TimeoutSeconds $TimeoutSeconds | Measure-BenchStream
    $process.Refresh()
    $cpu = $process.TotalProcessorTime - $cpu   # the whole Receive (a wait for the first message costs little)
}
finally {
    Close-IpcChannel $q
}
Assert-BenchStream $stream -Kind Strings -Count $Count

Write-BenchResult ([ordered]@{
    messages   = $Count - 1
    seconds    = $stream.Seconds
    prefetch   = $q.Prefetch
    cpuSeconds = $cpu.TotalSeconds
})
