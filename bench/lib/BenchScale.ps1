# Row 17 of bench/Invoke-Bench.ps1 (issue 12, item 4): one PsIpc socket server holding 1,000 and 10,000 concurrent
# clients. Dot-sourced by the harness, which calls Measure-Scale, Get-ScaleTargets and Get-ScaleMethodNotes. Uses the
# harness's helpers (Measure-Repeated, New-Measurement, Start-BenchPwsh, Start-BenchProcess, ...), its RawSocket
# build ($script:RawSocketDll) and $script:ModuleManifest.

$script:ScaleClients = @(1000, 10000)
$script:ScaleRounds = 3          # round trips per active or slow client
$script:ScaleIdlePercent = 20    # connected, silent until the others are done, then one round trip
$script:ScaleSlowPercent = 5     # each request in two writes 200 ms apart, the reply read 200 ms later
$script:ScaleRepetitions = if ($Quick) { 1 } else { 3 }
# What the row promises (docs/benchmarks.md, docs/architecture.md): threads and memory of the server process at
# 10,000 clients, whatever the machine; a thread or two per connection would be 10,000 or 20,000.
$script:ScaleMaxThreads = 100
$script:ScaleMaxWorkingSetMiB = 512

$script:RowScale = '17. concurrent clients at scale (1k and 10k clients)'

function Get-OpenFileLimit {
    # The hard limit of open files for processes started from here (a .NET process raises its soft limit to it at
    # start; Python's and others' need setrlimit, or `ulimit -n` in the launching shell). $null when not on Linux.
    if (-not (Test-Path /proc/self/limits)) { return $null }
    $line = Select-String -Path /proc/self/limits -Pattern '^Max open files\s+(\S+)\s+(\S+)' | Select-Object -First 1
    if (-not $line) { return $null }
    $hard = $line.Matches.Groups[2].Value
    if ($hard -eq 'unlimited') { [long]::MaxValue } else { [long]$hard }
}

function Invoke-ScaleRun {
    # One server pwsh (bench/workers/PsIpcScaleServer.ps1) and the load generator (bench/RawSocket scale) in another
    # process; the generator's JSON with the server's figures added (server_*) and its errors summed in.
    param([int] $Clients)
    if ($script:RawSocketBuildError) {
        throw $script:RawSocketBuildError
    }
    Assert-PsIpcModule
    $limit = Get-OpenFileLimit
    if ($null -ne $limit -and $limit -lt $Clients + 512) {
        throw "the hard limit of open files is $limit; $Clients clients need at least $($Clients + 512) in the server and in the load generator. Raise it (as root: ulimit -Hn, or /etc/security/limits.conf) and run again."
    }
    $readyFile = New-BenchReadyFile
    try {
        $serverHandle = Start-BenchPwsh -Label "PsIpc scale server ($Clients)" -Worker PsIpcScaleServer -Parameters ([ordered]@{
                ModulePath = $script:ModuleManifest; ReadyFile = $readyFile; Clients = $Clients
            })
        try {
            $generator = Start-BenchProcess -Label "RawSocket scale ($Clients clients)" -FilePath $script:Dotnet -ArgumentList @(
                $script:RawSocketDll, 'scale', $readyFile, [string]$Clients, [string]$script:ScaleRounds,
                [string]$script:ScaleIdlePercent, [string]$script:ScaleSlowPercent)
        }
        catch {
            Stop-BenchProcess $serverHandle
            throw
        }
        $trips, $served = Wait-BenchProcess -Handle $generator, $serverHandle -TimeoutSeconds 900
    }
    finally {
        Remove-BenchReadyFile $readyFile
        Remove-Item -LiteralPath "$readyFile.connected" -ErrorAction Ignore
    }
    foreach ($name in $served.psobject.Properties.Name) {
        $trips | Add-Member -NotePropertyName "server_$name" -NotePropertyValue $served.$name
    }
    $trips.errors += $served.handlerErrors + $served.connectionErrors + $served.connectionsRefused + $served.stillConnected
    if ($trips.connected -lt $Clients) { $trips.errors += $Clients - $trips.connected }
    Write-Host ("    connected in {0:N1} s; server threads {1} before, {2} with all connected, {3} peak; working set {4:N0} / {5:N0} / {6:N0} MiB" -f
        $trips.connectSeconds, $served.baseThreads, $served.connectedThreads, $served.peakThreads,
        ($served.baseWorkingSet / 1MB), ($served.connectedWorkingSet / 1MB), ($served.peakWorkingSet / 1MB))
    if ($trips.errors -gt 0) {
        $shown = if ($trips.psobject.Properties['firstError']) { $trips.firstError }
        Write-Host "    $($trips.errors) error(s): server $($served | ConvertTo-Json -Compress); generator: $shown" -ForegroundColor Yellow
    }
    $trips
}

function Measure-Scale {
    $row = $script:RowScale
    Write-Host $row -ForegroundColor Cyan
    foreach ($clients in $script:ScaleClients) {
        $n = $clients.ToString('N0', $script:Invariant)
        $runs = Measure-Repeated "PsIpc script-block server, $n clients" -Repetitions $script:ScaleRepetitions { Invoke-ScaleRun -Clients $clients }
        $null = New-Measurement -Row $row -Implementation "$n clients: errors" -Unit 'errors' -Runs $runs -Count $clients
        $null = New-Measurement -Row $row -Implementation "$n clients: connecting all (64 at a time)" -Unit 's' -Runs $runs -Count $clients `
            -Value { param($r) $r.connectSeconds }
        $null = New-Measurement -Row $row -Implementation "$n clients: round trips of the active clients, all at once" -Unit 'trips/s' -Runs $runs `
            -Count $clients -Value { param($r) $r.messages / $r.seconds }
        $null = New-Measurement -Row $row -Implementation "$n clients: server threads, all connected" -Unit 'threads' -Runs $runs -Count $clients `
            -Value { param($r) $r.server_connectedThreads }
        $null = New-Measurement -Row $row -Implementation "$n clients: server threads, peak" -Unit 'threads' -Runs $runs -Count $clients `
            -Value { param($r) $r.server_peakThreads }
        $null = New-Measurement -Row $row -Implementation "$n clients: server working set, all connected" -Unit 'MiB' -Runs $runs -Count $clients `
            -Value { param($r) $r.server_connectedWorkingSet / 1MB }
        $null = New-Measurement -Row $row -Implementation "$n clients: server working set, peak" -Unit 'MiB peak' -Runs $runs -Count $clients `
            -Value { param($r) $r.server_peakWorkingSet / 1MB }
    }
}

function Get-ScaleTargets {
    $errors = Find-Measurement $script:RowScale '10,000 clients: errors'
    $threads = Find-Measurement $script:RowScale '10,000 clients: server threads, peak'
    $memory = Find-Measurement $script:RowScale '10,000 clients: server working set, peak'
    New-Target '10,000 concurrent clients: errors' '= 0' @($errors) {
        param($e) "$e", ($e -eq 0)
    }
    New-Target '10,000 concurrent clients: server threads (peak)' "<= $script:ScaleMaxThreads" @($threads) {
        param($t) "$t", ($t -le $script:ScaleMaxThreads)
    }
    New-Target '10,000 concurrent clients: server working set (peak)' "<= $script:ScaleMaxWorkingSetMiB MiB" @($memory) {
        param($m) ('{0:N0} MiB' -f $m), ($m -le $script:ScaleMaxWorkingSetMiB)
    }
}

function Get-ScaleMethodNotes {
    $text = @'
Row 17, **concurrent clients at scale**: one server pwsh, `Start-IpcSocketServer -Port 0 -MaxConnections <N+64>
-ScriptBlock { param($message) $message }` (bench/workers/PsIpcScaleServer.ps1), and the C# load generator
`RawSocket scale` (bench/RawSocket/Scale.cs) in another process. The generator connects N PsIpc clients over TCP
(connect and Hello exchange, 64 in flight at a time: "connecting all"), then, all at once: <<Idle>>% of them stay
idle, <<Slow>>% are slow (each request sent in two writes 200 ms apart, the reply read 200 ms after it) and the rest
are active; active and slow clients do <<Rounds>> round trips each (trips/s: the active clients' trips over the time
they took), then every idle client does one. Every reply is checked; errors are wrong or missing replies (30 s),
failed connects, and the server's handler errors, connection errors, refused and leftover connections. The server
samples its own process every 100 ms (/proc/self/status: Threads, VmRSS): with all N connected and idle, and the
peak over the run. A server connection reads on a thread of its own only for the server's first 16 connections;
the others read and write asynchronously on the thread pool (docs/architecture.md, "Threads per connection").
Open files: a .NET process raises its soft limit to the hard limit at start; the row checks that the hard limit
(`ulimit -Hn`) leaves room for N sockets and fails with a message otherwise.
'@
    $text.Replace('<<Idle>>', [string]$script:ScaleIdlePercent).Replace('<<Slow>>', [string]$script:ScaleSlowPercent).Replace('<<Rounds>>', [string]$script:ScaleRounds)
}
