# PsIpc round trip, measuring side: connects to the echo's pipe and, from a script loop, sends 'ping'
# and waits for the echo (no -TimeoutSeconds in the loop: the harness kills a hung run). Timed over
# $Count round trips after untimed ones: at least $WarmUp and for at least $WarmUpSeconds, so that the runtime's
# tiered JIT has settled in both processes (after 200 trips the loop still ran mostly tier-0 code: 400-440 us a trip,
# against 90-96 us after 20,000).
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Name,
    [Parameter(Mandatory)] [int] $Count,
    [int] $WarmUp = 200,
    [double] $WarmUpSeconds = 3
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$pipe = New-IpcPipe -Name $Name -Connect -TimeoutSeconds 30
try {
    $warming = [System.Diagnostics.Stopwatch]::StartNew()
    for ($i = 0; $i -lt $WarmUp -or $warming.Elapsed.TotalSeconds -lt $WarmUpSeconds; $i++) {
        Send-IpcMessage $pipe 'ping'
        $null = Receive-IpcMessage $pipe -Count 1
    }
    $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
    for ($i = 0; $i -lt $Count; $i++) {
        Send-IpcMessage $pipe 'ping'
        $reply = Receive-IpcMessage $pipe -Count 1
    }
    $stopwatch.Stop()
}
finally {
    Close-IpcChannel $pipe
}
if ($reply -ne 'ping') {
    throw "the echo answered '$reply' instead of 'ping'"
}

Write-BenchResult ([ordered]@{
    messages = $Count
    seconds  = $stopwatch.Elapsed.TotalSeconds
})
