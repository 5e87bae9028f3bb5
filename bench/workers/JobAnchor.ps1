# Anchor: Start-Job / Start-ThreadJob moving $Count strings or objects to the parent.
# The job builds its data first, then outputs it; the parent pipes Receive-Job -Wait into the
# counting sink. The result carries both the sink's "first item to last" time and the wall clock
# from the Start-*Job call to the end (job start-up and the job's own data building included).
param(
    [Parameter(Mandatory)] [ValidateSet('Job', 'ThreadJob')] [string] $JobType,
    [Parameter(Mandatory)] [ValidateSet('Strings', 'Objects')] [string] $Kind,
    [Parameter(Mandatory)] [int] $Count
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1

$workerLibrary = Join-Path $PSScriptRoot 'BenchWorker.ps1'
$jobScript = {
    param($WorkerLibrary, $Kind, $Count)
    . $WorkerLibrary
    $data = New-BenchData -Kind $Kind -Count $Count
    $data
}
$jobArguments = @($workerLibrary, $Kind, $Count)

$wallClock = [System.Diagnostics.Stopwatch]::StartNew()
$job = if ($JobType -eq 'Job') {
    Start-Job -ScriptBlock $jobScript -ArgumentList $jobArguments
}
else {
    Start-ThreadJob -ScriptBlock $jobScript -ArgumentList $jobArguments
}
$stream = Receive-Job $job -Wait -AutoRemoveJob | Measure-BenchStream
$wallClock.Stop()
Assert-BenchStream $stream -Kind $Kind -Count $Count

Write-BenchResult ([ordered]@{
    messages    = $Count - 1
    seconds     = $stream.Seconds
    wallSeconds = $wallClock.Elapsed.TotalSeconds
})
