# PsIpc rows, receiving side: serves a pipe, takes $Count messages into the counting sink (timed from
# the first message taken to the last) and reports its peak working set. Start it before the sender.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Name,
    [Parameter(Mandatory)] [ValidateSet('Strings', 'Objects', 'Bytes')] [string] $Kind,
    [Parameter(Mandatory)] [int] $Count,
    [double] $TimeoutSeconds = 120
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$pipe = New-IpcPipe -Name $Name
try {
    $stream = Receive-IpcMessage $pipe -Count $Count -TimeoutSeconds $TimeoutSeconds |
        Measure-BenchStream -Bytes:($Kind -eq 'Bytes')
}
finally {
    Close-IpcChannel $pipe
}
Assert-BenchStream $stream -Kind $Kind -Count $Count

Write-BenchResult ([ordered]@{
    messages       = $Count - 1
    seconds        = $stream.Seconds
    bytes          = $stream.TotalBytes
    peakWorkingSet = Get-BenchPeakWorkingSet
})
