# PsIpc rows, sending side: prepares its data, then connects to the receiver's pipe and pipes the data
# into Send-IpcMessage (each pipeline item is one message), then closes the channel (flush + goodbye).
# Reports its own view too: from connected to closed.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Name,
    [Parameter(Mandatory)] [ValidateSet('Strings', 'Objects', 'Bytes')] [string] $Kind,
    [Parameter(Mandatory)] [int] $Count
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$data = New-BenchData -Kind $Kind -Count $Count

$pipe = New-IpcPipe -Name $Name -Connect -TimeoutSeconds 30
$stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
try {
    $data | Send-IpcMessage $pipe
}
finally {
    Close-IpcChannel $pipe
}
$stopwatch.Stop()

Write-BenchResult ([ordered]@{
    messages = $Count
    seconds  = $stopwatch.Elapsed.TotalSeconds
})
