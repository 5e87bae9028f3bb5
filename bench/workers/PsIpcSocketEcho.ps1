# PsIpc socket rows, serving side: Start-IpcSocketServer with the echo script block
# { param($message) $message } on TCP port 0 (or -Path: a Unix socket), publishes its endpoint in
# $ReadyFile, and serves until the client worker says it is done and its clients have gone.
# Reports the server's counters (messages, handler errors, connection errors, refused connections,
# clients still connected after the client worker closed them all).
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $ReadyFile,
    [string] $Path,
    [int] $ThrottleLimit = 0,
    [double] $TimeoutSeconds = 180
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
. $PSScriptRoot/BenchSocket.ps1
Import-Module $ModulePath

$serverParameters = @{ ScriptBlock = { param($message) $message } }
if ($Path) { $serverParameters.Path = $Path } else { $serverParameters.Port = 0 }
if ($ThrottleLimit -gt 0) { $serverParameters.ThrottleLimit = $ThrottleLimit }
$server = Start-IpcSocketServer @serverParameters
try {
    Publish-BenchEndpoint -ReadyFile $ReadyFile -Server $server
    $stillConnected = Wait-BenchClientsDone -ReadyFile $ReadyFile -Server $server -TimeoutSeconds $TimeoutSeconds
    $counters = Get-BenchServerCounters $server
    $counters.stillConnected = $stillConnected
}
finally {
    Stop-IpcSocketServer $server
}

Write-BenchResult $counters
