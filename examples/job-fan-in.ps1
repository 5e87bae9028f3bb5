<#
.SYNOPSIS
    Fan-in: five ForEach-Object -Parallel workers send their results into one pipe server.

.DESCRIPTION
    The parent opens one server for exactly five clients (New-IpcPipe -MaxClients 5) and starts five
    ForEach-Object -Parallel workers as a job (-AsJob), so that it can read while they work. Each
    worker connects to the server by name, sends one object per item it processes, and closes its
    channel. The parent's Receive-IpcMessage streams the results as they arrive, from all five
    workers merged, and ends by itself when the five clients have come and gone: no -Count to
    compute, no polling, no synchronized hashtable.

.EXAMPLE
    dotnet pwsh -NoProfile -File examples/job-fan-in.ps1 -ItemsPerWorker 1000
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 100000)] [int] $ItemsPerWorker = 200
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$modulePath = if ($env:PSIPC_MODULE_PATH) { $env:PSIPC_MODULE_PATH } else { Join-Path $PSScriptRoot '../output/PsIpc' }
$modulePath = [System.IO.Path]::GetFullPath($modulePath)
if (-not (Test-Path -LiteralPath (Join-Path $modulePath 'PsIpc.psd1'))) {
    throw "PsIpc is not staged at '$modulePath'. Run: dotnet pwsh -NoProfile -File ./build.ps1 Build"
}
Import-Module -Name $modulePath

$workerCount = 5
$server = New-IpcPipe -MaxClients $workerCount
$pipeName = $server.Name
$job = $null
try {
    Write-Host "Server '$pipeName' waits for $workerCount workers."
    $clock = [System.Diagnostics.Stopwatch]::StartNew()

    $job = 1..$workerCount | ForEach-Object -ThrottleLimit $workerCount -AsJob -Parallel {
        Import-Module -Name $using:modulePath
        $worker = $_
        $channel = New-IpcPipe -Name $using:pipeName -Connect -TimeoutSeconds 20
        try {
            1..$using:ItemsPerWorker | ForEach-Object {
                [pscustomobject]@{
                    Worker = $worker
                    Item   = $_
                    Square = [long]$_ * $_
                    Thread = [System.Threading.Thread]::CurrentThread.ManagedThreadId
                }
            } | Send-IpcMessage -Channel $channel
        }
        finally {
            Close-IpcChannel -Channel $channel
        }
    }

    # Streams until the five clients have all connected and all left.
    $results = [System.Collections.Generic.List[object]]::new()
    Receive-IpcMessage -Channel $server -TimeoutSeconds 60 | ForEach-Object {
        $results.Add($_)
        if ($results.Count % 250 -eq 0) { Write-Host "  $($results.Count) results so far" }
    }
    $elapsed = $clock.Elapsed.TotalSeconds

    $null = Wait-Job -Job $job -Timeout 30
    Receive-Job -Job $job   # a worker's errors, if any, surface here

    Write-Host ("{0} results from {1} workers in {2:0.00} s:" -f $results.Count, $workerCount, $elapsed)
    $results | Group-Object -Property Worker | Sort-Object -Property { [int]$_.Name } | ForEach-Object {
        [pscustomobject]@{
            Worker    = [int]$_.Name
            Results   = $_.Count
            SumSquare = [long]($_.Group | Measure-Object -Property Square -Sum).Sum
            Thread    = ($_.Group | Select-Object -First 1).Thread
        }
    } | Format-Table -AutoSize | Out-String | Write-Host

    $expected = $workerCount * $ItemsPerWorker
    if ($results.Count -ne $expected) { throw "Expected $expected results, got $($results.Count)." }
    $perWorker = @($results | Group-Object -Property Worker | Where-Object Count -EQ $ItemsPerWorker)
    if ($perWorker.Count -ne $workerCount) { throw 'Some worker''s results are missing.' }
    Write-Host 'Every worker delivered every result.'
}
finally {
    Close-IpcChannel -Channel $server
    if ($job) { Remove-Job -Job $job -Force }
}
