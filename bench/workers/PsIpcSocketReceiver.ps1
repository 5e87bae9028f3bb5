# PsIpc socket one-way row, receiving side: Start-IpcSocketServer without a script block on TCP port 0
# (or -Path: a Unix socket), publishes its endpoint in $ReadyFile, then takes $Count messages from the
# server channel into the counting sink (timed from the first message taken to the last), like the
# pipe receiver of row 1.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $ReadyFile,
    [string] $Path,
    [Parameter(Mandatory)] [ValidateSet('Strings', 'Objects', 'Bytes')] [string] $Kind,
    [Parameter(Mandatory)] [int] $Count,
    [double] $TimeoutSeconds = 120
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
. $PSScriptRoot/BenchSocket.ps1
Import-Module $ModulePath

$server = if ($Path) { Start-IpcSocketServer -Path $Path } else { Start-IpcSocketServer -Port 0 }
try {
    Publish-BenchEndpoint -ReadyFile $ReadyFile -Server $server
    $stream = Receive-IpcMessage $server -Count $Count -TimeoutSeconds $TimeoutSeconds |
        Measure-BenchStream -Bytes:($Kind -eq 'Bytes')
}
finally {
    Stop-IpcSocketServer $server
}
Assert-BenchStream $stream -Kind $Kind -Count $Count

Write-BenchResult ([ordered]@{
    messages       = $Count - 1
    seconds        = $stream.Seconds
    bytes          = $stream.TotalBytes
    peakWorkingSet = Get-BenchPeakWorkingSet
})
