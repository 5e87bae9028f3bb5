# Scale row (row 17, issue 12 item 4), serving side: Start-IpcSocketServer on TCP port 0 with the echo script block
# { param($message) $message }, room for $Clients clients (-MaxConnections), publishes its endpoint in $ReadyFile,
# and samples this process's thread count and resident set every 100 ms until the load generator (RawSocket scale)
# is done: before any client, once all are connected ("$ReadyFile.connected") and the peaks. Then reports those and
# the server's counters (clients still connected after the generator closed them all count as errors).
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $ReadyFile,
    [Parameter(Mandatory)] [int] $Clients,
    [double] $TimeoutSeconds = 900
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
. $PSScriptRoot/BenchSocket.ps1
Import-Module $ModulePath

function Get-ProcessSample {
    # Linux: /proc/self/status (cheap even with thousands of threads); elsewhere the Process object.
    if (Test-Path /proc/self/status) {
        $status = [IO.File]::ReadAllText('/proc/self/status')
        $threads = [int]([regex]::Match($status, '(?m)^Threads:\s*(\d+)').Groups[1].Value)
        $rss = [long]([regex]::Match($status, '(?m)^VmRSS:\s*(\d+) kB').Groups[1].Value) * 1KB
        return [pscustomobject]@{ Threads = $threads; WorkingSet = $rss }
    }
    $process = [System.Diagnostics.Process]::GetCurrentProcess()
    [pscustomobject]@{ Threads = $process.Threads.Count; WorkingSet = $process.WorkingSet64 }
}

$server = Start-IpcSocketServer -Port 0 -MaxConnections ($Clients + 64) -ScriptBlock { param($message) $message }
try {
    [GC]::Collect()
    $base = Get-ProcessSample
    $connected = $null
    $peakThreads = $base.Threads
    $peakWorkingSet = $base.WorkingSet
    Publish-BenchEndpoint -ReadyFile $ReadyFile -Server $server
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while (-not (Test-Path -LiteralPath "$ReadyFile.done")) {
        if ([DateTime]::UtcNow -gt $deadline) {
            throw "the clients did not finish within $TimeoutSeconds s ($($server.ConnectionsAccepted) accepted, $($server.ClientCount) connected)"
        }
        $sample = Get-ProcessSample
        $peakThreads = [Math]::Max($peakThreads, $sample.Threads)
        $peakWorkingSet = [Math]::Max($peakWorkingSet, $sample.WorkingSet)
        if (-not $connected -and (Test-Path -LiteralPath "$ReadyFile.connected")) {
            $connected = $sample
            $connected | Add-Member -NotePropertyName Clients -NotePropertyValue $server.ClientCount
        }
        Start-Sleep -Milliseconds 100
    }
    $graceEnd = [DateTime]::UtcNow.AddSeconds(30)
    while ($server.ClientCount -gt 0 -and [DateTime]::UtcNow -lt $graceEnd) {
        Start-Sleep -Milliseconds 50
    }
    $counters = Get-BenchServerCounters $server
    $counters.stillConnected = $server.ClientCount
    $counters.baseThreads = $base.Threads
    $counters.baseWorkingSet = $base.WorkingSet
    $counters.connectedThreads = if ($connected) { $connected.Threads } else { -1 }
    $counters.connectedWorkingSet = if ($connected) { $connected.WorkingSet } else { -1 }
    $counters.connectedClients = if ($connected) { $connected.Clients } else { -1 }
    $counters.peakThreads = $peakThreads
    $counters.peakWorkingSet = $peakWorkingSet
    $counters.handlerWorkers = $server.Handler.Workers
}
finally {
    Stop-IpcSocketServer $server
}

Write-BenchResult $counters
