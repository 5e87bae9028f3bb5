# PsIpc round trip, echo side: serves a pipe and sends every message back to the peer that sent it,
# until that peer closes. Reports how many messages it echoed.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Name,
    [double] $TimeoutSeconds = 120
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$echoed = 0
$pipe = New-IpcPipe -Name $Name
try {
    Receive-IpcMessage $pipe -Envelope -TimeoutSeconds $TimeoutSeconds |
        ForEach-Object { Send-IpcMessage $_.Sender $_.Body; $echoed++ }
}
finally {
    Close-IpcChannel $pipe
}

Write-BenchResult ([ordered]@{ messages = $echoed })
