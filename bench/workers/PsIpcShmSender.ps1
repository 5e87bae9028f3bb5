# Shared memory queue rows, sending side: prepares its data, opens the receiver's queue by name
# (waiting up to 30 s for the receiver to create it) and pipes the data into Send-IpcMessage (each
# pipeline item is one message). Reports its own view too: from opened to the last message sent.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Name,
    [Parameter(Mandatory)] [ValidateSet('Strings', 'Bytes')] [string] $Kind,
    [Parameter(Mandatory)] [int] $Count
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

$data = New-BenchData -Kind $Kind -Count $Count

$deadline = [DateTime]::UtcNow.AddSeconds(30)
while ($true) {
    try {
        $queue = New-SharedMemory -Name $Name -Open
        break
    }
    catch {
        if ([DateTime]::UtcNow -gt $deadline) { throw "The queue '$Name' did not appear within 30 s: $_" }
        Start-Sleep -Milliseconds 20
    }
}
$cpu = [System.Diagnostics.Process]::GetCurrentProcess().TotalProcessorTime
$stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
try {
    $data | Send-IpcMessage $queue
}
finally {
    $stopwatch.Stop()
    $cpu = [System.Diagnostics.Process]::GetCurrentProcess().TotalProcessorTime - $cpu
    Close-IpcChannel $queue
}

Write-BenchResult ([ordered]@{
    messages   = $Count
    seconds    = $stopwatch.Elapsed.TotalSeconds
    cpuSeconds = $cpu.TotalSeconds
})
