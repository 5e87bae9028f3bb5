# PsIpc socket one-way row, sending side: prepares its data, waits for the receiver's endpoint,
# connects with Connect-IpcSocket and pipes the data into Send-IpcMessage (each item one message),
# then closes the connection (flush + goodbye), like the pipe sender of row 1.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $ReadyFile,
    [Parameter(Mandatory)] [ValidateSet('Strings', 'Objects', 'Bytes')] [string] $Kind,
    [Parameter(Mandatory)] [int] $Count
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
. $PSScriptRoot/BenchSocket.ps1
Import-Module $ModulePath

$data = New-BenchData -Kind $Kind -Count $Count
$endpoint = Wait-BenchEndpoint -ReadyFile $ReadyFile

$c = Connect-IpcSocket @endpoint -TimeoutSeconds 30
$stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
try {
    $data | Send-IpcMessage $c
}
finally {
    Close-IpcChannel $c
}
$stopwatch.Stop()

Write-BenchResult ([ordered]@{
    messages = $Count
    seconds  = $stopwatch.Elapsed.TotalSeconds
})
