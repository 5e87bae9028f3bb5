# Shared memory queue rows, receiving side: creates the queue (New-SharedMemory -Queue), takes $Count
# messages into the counting sink (timed from the first message taken to the last) and removes the
# queue. Start it before the sender, which opens the queue by name.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Name,
    [Parameter(Mandatory)] [ValidateSet('Strings', 'Bytes')] [string] $Kind,
    [Parameter(Mandatory)] [int] $Count,
    [Parameter(Mandatory)] [long] $Size,
    [double] $TimeoutSeconds = 120
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$queue = New-SharedMemory -Name $Name -Size $Size -Queue
$cpu = [System.Diagnostics.Process]::GetCurrentProcess().TotalProcessorTime
try {
    $stream = Receive-IpcMessage $queue -Count $Count -TimeoutSeconds $TimeoutSeconds |
        Measure-BenchStream -Bytes:($Kind -eq 'Bytes')
}
finally {
    $cpu = [System.Diagnostics.Process]::GetCurrentProcess().TotalProcessorTime - $cpu
    Remove-SharedMemory $queue
}
Assert-BenchStream $stream -Kind $Kind -Count $Count

Write-BenchResult ([ordered]@{
    messages       = $Count - 1
    seconds        = $stream.Seconds
    bytes          = $stream.TotalBytes
    peakWorkingSet = Get-BenchPeakWorkingSet
    cpuSeconds     = $cpu.TotalSeconds
})
