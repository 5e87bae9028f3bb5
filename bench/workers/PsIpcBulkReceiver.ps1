# Row 16 (issue 12, item 3), receiving side: takes $Count 1 MiB messages with Receive-IpcMessage -Buffer into
# one reused array, the length of each into the counting sink (timed from the first message taken to the
# last). Over a pipe (it serves the pipe; start it before bench/workers/PsIpcSender.ps1 -Kind Bytes) or a
# shared memory queue (it creates the queue; start it before PsIpcShmSender.ps1 -Kind Bytes).
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Name,
    [Parameter(Mandatory)] [ValidateSet('Pipe', 'SharedMemory')] [string] $Transport,
    [Parameter(Mandatory)] [int] $Count,
    [long] $Size = 0,
    [double] $TimeoutSeconds = 120
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$buffer = [byte[]]::new($script:BytesPayloadSize)
$channel = if ($Transport -eq 'Pipe') { New-IpcPipe -Name $Name } else { New-SharedMemory -Name $Name -Size $Size -Queue }
try {
    $stream = Receive-IpcMessage $channel -Buffer $buffer -Count $Count -TimeoutSeconds $TimeoutSeconds | Measure-BenchStream
}
finally {
    if ($Transport -eq 'Pipe') { Close-IpcChannel $channel } else { Remove-SharedMemory $channel }
}
if ($stream.Count -ne $Count -or $stream.First -ne $script:BytesPayloadSize) {
    throw "received $($stream.Count) of $Count messages, the first of $($stream.First) bytes"
}

Write-BenchResult ([ordered]@{
    messages       = $Count - 1
    seconds        = $stream.Seconds
    bytes          = [long]$script:BytesPayloadSize * ($Count - 1)
    peakWorkingSet = Get-BenchPeakWorkingSet
})
