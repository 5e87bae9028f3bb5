<#
.SYNOPSIS
    The soak: every transport under steady load plus a connect/close churn, with the working set, open
    file descriptors and threads of every process sampled each second.

.DESCRIPTION
    ./build.ps1 Soak -Minutes N runs this against the staged module and writes docs/soak.md and
    docs/soak.png; tests/Pester/Scenario.Soak.Tests.ps1 runs a one-minute version and checks its summary.

    Processes (each a fresh pwsh running soak/SoakWorker.ps1): a server and a client per transport (pipe,
    TCP, Unix socket, UDP, shared-memory segment, shared-memory queue, and the RabbitMQ queue when
    -AmqpUri is given) and one churn process that connects and closes clients of those servers
    -ChurnCycles times. Sampled each second from /proc/<pid>: VmRSS (the working set), the entries of
    fd/ and Threads; the broker's node too, when -BrokerPid is given (reported, never judged: not PsIpc).

    Growth is measured from the end of the warm-up to the end of the load: the median of a window of
    samples at each end (memory), and for descriptors and threads the least of the last window against the
    most of the first, so connections in flight at a sampling instant are not growth, and a leak is.

    Writes to -OutputDirectory: samples.csv, summary.json and each worker's stderr (<label>.err).
    Returns the summary. Its Passed is false when a worker failed or reported errors, or any PsIpc
    process grew in descriptors (any) or threads (more than -ThreadSlack); Memory growth over
    -MaxGrowthPercent is reported in MemoryOk and fails Passed only with -FailOnMemoryGrowth.
#>
[CmdletBinding()]
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../output/PsIpc'),
    [double] $Minutes = 1,
    # Default: a tenth of the run, at least 15 s and at most 2 minutes.
    [int] $WarmupSeconds = -1,
    [int] $ChurnCycles = 10000,
    [string] $OutputDirectory = (Join-Path $PSScriptRoot '../output/soak'),
    # The RabbitMQ queue is soaked too when given (amqp://...), and the node's pid is sampled.
    [string] $AmqpUri,
    [int] $BrokerPid,
    [double] $MaxGrowthPercent = 5,
    [int] $ThreadSlack = 10,
    [switch] $FailOnMemoryGrowth,
    [int] $TickMilliseconds = 200,
    [int] $BatchSize = 10
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
. (Join-Path $PSScriptRoot 'SoakProcess.ps1')
. (Join-Path $PSScriptRoot 'SoakReport.ps1')

$ModulePath = [System.IO.Path]::GetFullPath($ModulePath)
$OutputDirectory = [System.IO.Path]::GetFullPath($OutputDirectory)
$null = New-Item -ItemType Directory -Force -Path $OutputDirectory
$seconds = [Math]::Round($Minutes * 60)
if ($WarmupSeconds -lt 0) { $WarmupSeconds = [int][Math]::Min(120, [Math]::Max(15, $seconds / 10)) }
if ($WarmupSeconds -ge $seconds) { throw "The warm-up ($WarmupSeconds s) must be shorter than the run ($seconds s)." }

$transports = @('Pipe', 'Tcp', 'Unix', 'Udp', 'Segment', 'Queue')
if ($AmqpUri) { $transports += 'Amqp' }
$tag = "soak$PID"
$unixPath = Join-Path ([System.IO.Path]::GetTempPath()) "psipc-$tag/unix.sock"
$workers = [System.Collections.Generic.List[object]]::new()
$samples = [System.Collections.Generic.List[object]]::new()
$startedAt = [DateTime]::UtcNow
$loadAverageStart = ((Get-Content -LiteralPath /proc/loadavg -Raw) -split ' ')[0..2] -join ' '
try {
    Write-Host "Soak: $($transports -join ', ') + churn of $ChurnCycles cycles, $seconds s ($WarmupSeconds s warm-up), output in $OutputDirectory"
    $common = @{ ModulePath = $ModulePath; TickMilliseconds = $TickMilliseconds; BatchSize = $BatchSize }
    foreach ($t in $transports) {
        $name = switch ($t) { 'Unix' { $unixPath } 'Amqp' { "psipc-$tag" } default { "$tag-$($t.ToLowerInvariant())" } }
        $parameters = $common + @{ Role = 'Server'; Transport = $t; Name = $name }
        if ($t -eq 'Amqp') { $parameters.AmqpUri = $AmqpUri }
        $workers.Add((Start-SoakWorker -Label "$($t.ToLowerInvariant()) server" -Parameters $parameters -OutputDirectory $OutputDirectory))
    }
    $addresses = @{}
    foreach ($w in $workers) {
        $ready = Wait-SoakReady $w -TimeoutSeconds 600
        foreach ($p in $ready.PSObject.Properties) { if ($p.Name -notin 'event', 'role', 'transport') { $addresses[$p.Name] = $p.Value } }
    }
    $addressJson = $addresses | ConvertTo-Json -Compress
    $clients = [System.Collections.Generic.List[object]]::new()
    foreach ($t in $transports) {
        $clients.Add((Start-SoakWorker -Label "$($t.ToLowerInvariant()) client" -OutputDirectory $OutputDirectory -Parameters ($common + @{
                        Role = 'Client'; Transport = $t; Addresses = $addressJson; Seconds = $seconds })))
    }
    $clients.Add((Start-SoakWorker -Label 'churn' -OutputDirectory $OutputDirectory -Parameters ($common + @{
                    Role = 'Churn'; Addresses = $addressJson; Seconds = $seconds; Cycles = $ChurnCycles })))
    $workers.AddRange($clients)   # from here on, a failure stops them too
    foreach ($c in $clients) { $null = Wait-SoakReady $c -TimeoutSeconds 600 }
    foreach ($c in $clients) { $c.Process.StandardInput.WriteLine('go'); $c.Process.StandardInput.Close() }

    # Sampled each second while the load runs: from the go until the first client has finished.
    $sampled = @($workers | ForEach-Object { [pscustomobject]@{ Label = $_.Label; Pid = $_.Process.Id; PsIpc = $true } })
    if ($BrokerPid -gt 0) { $sampled += [pscustomobject]@{ Label = 'broker (RabbitMQ node)'; Pid = $BrokerPid; PsIpc = $false } }
    $t0 = [DateTime]::UtcNow
    $tick = 0
    $until = $t0.AddSeconds($seconds + 300)   # a safety net: clients stop by themselves after $seconds
    while (-not @($clients | Where-Object { $_.Process.HasExited }).Count) {
        $failed = @($workers | Where-Object { $_.Process.HasExited -and $_.Process.ExitCode -ne 0 })
        if ($failed) { throw (Get-SoakWorkerError $failed[0]) }
        if ([DateTime]::UtcNow -gt $until) { throw "The clients did not finish within $($seconds + 300) s." }
        $t = ([DateTime]::UtcNow - $t0).TotalSeconds
        foreach ($s in $sampled) {
            $sample = Get-ProcSample -ProcessId $s.Pid
            if ($sample) { $samples.Add([pscustomobject]@{ Seconds = [Math]::Round($t, 1); Label = $s.Label; Pid = $s.Pid; RssMiB = $sample.RssMiB; AnonMiB = $sample.AnonMiB; Fds = $sample.Fds; IpcFds = $sample.IpcFds; Threads = $sample.Threads }) }
        }
        $tick++
        $wait = ($t0.AddSeconds($tick) - [DateTime]::UtcNow).TotalMilliseconds
        if ($wait -gt 0) { Start-Sleep -Milliseconds ([int]$wait) }   # the sampling period, not a synchronisation
    }
    $loadSeconds = ([DateTime]::UtcNow - $t0).TotalSeconds

    # The clients are done: the servers end when their standard input does.
    foreach ($c in $clients) { Wait-SoakExit $c -TimeoutSeconds 120 }
    foreach ($w in $workers | Where-Object Role -eq 'Server') { $w.Process.StandardInput.Close() }
    foreach ($w in $workers) { Wait-SoakExit $w -TimeoutSeconds 120 }
    $results = @($workers | ForEach-Object { Get-SoakResult $_ })
}
finally {
    foreach ($w in $workers) { Stop-SoakWorker $w }
    $samples | Export-Csv -LiteralPath (Join-Path $OutputDirectory 'samples.csv') -NoTypeInformation -UseQuotes AsNeeded
}

$summary = New-SoakSummary -Samples $samples -Sampled $sampled -Results $results -WarmupSeconds $WarmupSeconds `
    -LoadSeconds $loadSeconds -StartUnixSeconds ($t0 - [DateTime]::UnixEpoch).TotalSeconds -MaxGrowthPercent $MaxGrowthPercent -ThreadSlack $ThreadSlack -FailOnMemoryGrowth:$FailOnMemoryGrowth
$summary.StartedAt = $startedAt.ToString('yyyy-MM-dd HH:mm')
$summary.LoadAverageStart = $loadAverageStart
$summary.LoadAverageEnd = ((Get-Content -LiteralPath /proc/loadavg -Raw) -split ' ')[0..2] -join ' '
$summary.Cores = [Environment]::ProcessorCount
$summary.PwshVersion = "$($PSVersionTable.PSVersion)"
$summary.Runtime = [System.Runtime.InteropServices.RuntimeInformation]::FrameworkDescription
$summary.ModuleVersion = (Import-PowerShellDataFile -LiteralPath (Join-Path $ModulePath 'PsIpc.psd1')).ModuleVersion
$summary.Commit = try { (& git -C $PSScriptRoot rev-parse --short HEAD 2>$null) } catch { 'unknown' }
$summary.Minutes = $Minutes
$summary.ChurnCycles = $ChurnCycles
$summary.Transports = $transports
$summary.TickMilliseconds = $TickMilliseconds
$summary.BatchSize = $BatchSize
$summary | ConvertTo-Json -Depth 6 | Set-Content -LiteralPath (Join-Path $OutputDirectory 'summary.json') -Encoding utf8
Format-SoakConsole $summary | Write-Host
$summary
