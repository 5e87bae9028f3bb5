# PsIpc queue rows (issue 10), producing side: builds its 16-byte strings, connects to the bench's
# private broker with Connect-IpcQueue (the queue declared durable), then, on the clock, pipes them into
# Send-IpcMessage (each item one persistent message; with confirms it returns once the broker confirmed
# them all) and closes the channel. The pika anchor (bench/anchors/amqp_pika.py produce) does the same.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Uri,
    [Parameter(Mandatory)] [string] $Queue,
    [Parameter(Mandatory)] [int] $Count,
    [Parameter(Mandatory)] [ValidateSet('On', 'Off')] [string] $Confirm
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$data = New-BenchStrings $Count
$q = Connect-IpcQueue -Uri $Uri -Queue $Queue -NoConfirm:($Confirm -eq 'Off') -TimeoutSeconds 60
$process = [System.Diagnostics.Process]::GetCurrentProcess()
$cpu = $process.TotalProcessorTime
$stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
try {
    $data | Send-IpcMessage $q -TimeoutSeconds 120
}
finally {
    Close-IpcChannel $q
}
$stopwatch.Stop()
$process.Refresh()

Write-BenchResult ([ordered]@{
    messages   = $Count
    seconds    = $stopwatch.Elapsed.TotalSeconds
    cpuSeconds = ($process.TotalProcessorTime - $cpu).TotalSeconds   # all threads: the client's I/O loops too
})
