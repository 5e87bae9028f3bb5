# The soak's figures (dot-sourced by soak/Invoke-Soak.ps1 and build.ps1's Soak task): growth per process
# from the samples, the verdict, the console summary and docs/soak.md.

function Get-Median([double[]] $Values) {
    if (-not $Values.Count) { return [double]::NaN }
    $sorted = [double[]]($Values | Sort-Object)
    $mid = [int][Math]::Floor($sorted.Count / 2)
    if ($sorted.Count % 2) { $sorted[$mid] } else { ($sorted[$mid - 1] + $sorted[$mid]) / 2 }
}

function Get-Slope([object[]] $Points) {
    # Least-squares slope of RssMiB over Seconds, in MiB per hour.
    if ($Points.Count -lt 3) { return [double]::NaN }
    $n = $Points.Count; $sx = 0.0; $sy = 0.0; $sxx = 0.0; $sxy = 0.0
    foreach ($p in $Points) { $sx += $p.Seconds; $sy += $p.RssMiB; $sxx += $p.Seconds * $p.Seconds; $sxy += $p.Seconds * $p.RssMiB }
    $d = $n * $sxx - $sx * $sx
    if ($d -eq 0) { return [double]::NaN }
    ($n * $sxy - $sx * $sy) / $d * 3600
}

function New-SoakSummary {
    param(
        [object[]] $Samples, [object[]] $Sampled, [object[]] $Results, [int] $WarmupSeconds, [double] $LoadSeconds,
        # When the load began (Unix seconds): the workers stamp their heap samples with the clock, not the load's time.
        [double] $StartUnixSeconds = 0,
        [double] $MaxGrowthPercent = 5, [int] $ThreadSlack = 10, [switch] $FailOnMemoryGrowth
    )
    $span = $LoadSeconds - $WarmupSeconds
    # Each end of the measured span is a window: 5% of it, at least 5 s and at most a minute.
    $window = [Math]::Min(60, [Math]::Max(5, $span * 0.05))
    $problems = [System.Collections.Generic.List[string]]::new()
    $memoryOk = $true
    $processes = foreach ($s in $Sampled) {
        $mine = @($Samples | Where-Object Pid -eq $s.Pid)
        $measured = @($mine | Where-Object Seconds -ge $WarmupSeconds)
        $first = @($measured | Where-Object Seconds -le ($WarmupSeconds + $window))
        $last = @($measured | Where-Object Seconds -ge ($LoadSeconds - $window))
        # A sampler slowed down by a loaded machine: at least 3 samples at each end, when there are 6.
        if ($first.Count -lt 3 -and $measured.Count -ge 6) { $first = @($measured | Select-Object -First 3) }
        if ($last.Count -lt 3 -and $measured.Count -ge 6) { $last = @($measured | Select-Object -Last 3) }
        if (-not $first -or -not $last) {
            $problems.Add("$($s.Label): too few samples after the warm-up ($($measured.Count))")
            continue
        }
        # The worker's live managed heap (after a full collection, once a minute), from the end of the warm-up.
        $worker = @($Results | Where-Object { $_.label -eq $s.Label }) | Select-Object -First 1
        $heap = @(if ($worker -and $worker.PSObject.Properties['heap']) { $worker.heap | Where-Object { $_.at - $StartUnixSeconds -ge $WarmupSeconds } })
        $heapEnds = [Math]::Min(3, [Math]::Floor($heap.Count / 2))
        $rssStart = Get-Median $first.RssMiB
        $rssEnd = Get-Median $last.RssMiB
        $p = [ordered]@{
            Label            = $s.Label
            Pid              = $s.Pid
            PsIpc            = $s.PsIpc
            Samples          = $mine.Count
            RssWarmupMiB     = [Math]::Round($rssStart, 1)
            RssEndMiB        = [Math]::Round($rssEnd, 1)
            RssMaxMiB        = ($measured.RssMiB | Measure-Object -Maximum).Maximum
            RssGrowthPercent = [Math]::Round(($rssEnd - $rssStart) / $rssStart * 100, 2)
            RssTrendMiBPerHour = [Math]::Round((Get-Slope $measured), 1)
            # The private part (RssAnon), when sampled: heaps, not mapped files or shared memory.
            AnonWarmupMiB    = if ($first[0].PSObject.Properties['AnonMiB']) { [Math]::Round((Get-Median $first.AnonMiB), 1) } else { $null }
            AnonEndMiB       = if ($last[0].PSObject.Properties['AnonMiB']) { [Math]::Round((Get-Median $last.AnonMiB), 1) } else { $null }
            HeapWarmupMiB    = if ($heapEnds -ge 1) { [Math]::Round((Get-Median ($heap | Select-Object -First $heapEnds).mib), 1) } else { $null }
            HeapEndMiB       = if ($heapEnds -ge 1) { [Math]::Round((Get-Median ($heap | Select-Object -Last $heapEnds).mib), 1) } else { $null }
            HeapSamples      = $heap.Count
            # Descriptors other than the assemblies and libraries the runtime keeps open (see Get-ProcSample).
            FdsWarmup        = ($first.IpcFds | Measure-Object -Maximum).Maximum
            FdsEnd           = ($last.IpcFds | Measure-Object -Minimum).Minimum
            FdsMax           = ($measured.IpcFds | Measure-Object -Maximum).Maximum
            AllFdsWarmup     = ($first.Fds | Measure-Object -Maximum).Maximum
            AllFdsEnd        = ($last.Fds | Measure-Object -Minimum).Minimum
            ThreadsWarmup    = ($first.Threads | Measure-Object -Maximum).Maximum
            ThreadsEnd       = ($last.Threads | Measure-Object -Minimum).Minimum
            ThreadsMax       = ($measured.Threads | Measure-Object -Maximum).Maximum
        }
        $p.FdGrowth = [Math]::Max(0, $p.FdsEnd - $p.FdsWarmup)
        $p.ThreadGrowth = [Math]::Max(0, $p.ThreadsEnd - $p.ThreadsWarmup)
        if ($s.PsIpc) {
            if ($p.FdGrowth -gt 0) { $problems.Add("$($s.Label): open descriptors grew from at most $($p.FdsWarmup) after the warm-up to at least $($p.FdsEnd) at the end") }
            if ($p.ThreadGrowth -gt $ThreadSlack) { $problems.Add("$($s.Label): threads grew from at most $($p.ThreadsWarmup) to at least $($p.ThreadsEnd)") }
            if ($p.RssGrowthPercent -ge $MaxGrowthPercent) {
                $memoryOk = $false
                if ($FailOnMemoryGrowth) { $problems.Add("$($s.Label): working set grew $($p.RssGrowthPercent)% ($rssStart -> $rssEnd MiB)") }
            }
        }
        [pscustomobject]$p
    }
    foreach ($r in $Results) {
        if ($r.errors -gt 0) { $problems.Add("$($r.label): $($r.errors) errors, first: $(@($r.firstErrors) -join ' | ')") }
    }
    $churn = $Results | Where-Object role -eq 'Churn' | Select-Object -First 1
    [ordered]@{
        Passed           = $problems.Count -eq 0
        MemoryOk         = $memoryOk
        Problems         = $problems.ToArray()
        WarmupSeconds    = $WarmupSeconds
        LoadSeconds      = [Math]::Round($LoadSeconds, 1)
        WindowSeconds    = [Math]::Round($window, 1)
        MaxGrowthPercent = $MaxGrowthPercent
        ChurnCyclesDone  = if ($churn) { $churn.cycles } else { 0 }
        Processes        = @($processes)
        Workers          = @($Results)
    }
}

function Format-SoakConsole {
    param([Parameter(Mandatory)] [System.Collections.IDictionary] $Summary)
    ''
    'Soak: {0:n0} s of load, warm-up {1} s, windows of {2} s; churn {3} cycles' -f $Summary.LoadSeconds, $Summary.WarmupSeconds, $Summary.WindowSeconds, $Summary.ChurnCyclesDone
    ($Summary.Processes | Format-Table Label, RssWarmupMiB, RssEndMiB, RssGrowthPercent, RssTrendMiBPerHour, HeapWarmupMiB, HeapEndMiB, FdsWarmup, FdsEnd, ThreadsWarmup, ThreadsEnd -AutoSize | Out-String).TrimEnd()
    ($Summary.Workers | Format-Table label, seconds, sent, received, lost, reads, writes, cycles, errors -AutoSize | Out-String).TrimEnd()
    if ($Summary.Problems.Count) { $Summary.Problems | ForEach-Object { "PROBLEM: $_" } } else { 'No problem: descriptors and threads flat, no worker errors.' }
    "Memory growth under $($Summary.MaxGrowthPercent)% in every PsIpc process: $($Summary.MemoryOk)"
}

function ConvertTo-SoakMarkdown {
    # docs/soak.md: what the run was, the table, and how to run it again.
    param([Parameter(Mandatory)] [System.Collections.IDictionary] $Summary, [string] $PlotFile = 'soak.png', [string[]] $Notes = @())
    $inv = [cultureinfo]::InvariantCulture
    $m = [System.Text.StringBuilder]::new()
    $line = { param($t) $null = $m.AppendLine($t) }
    & $line '# Soak: memory and descriptors over time'
    & $line ''
    & $line 'Written by `./build.ps1 Soak -Minutes N` (soak/Invoke-Soak.ps1). Every transport runs under steady load while a'
    & $line 'churn process connects and closes clients; the working set (VmRSS), open file descriptors and threads of every'
    & $line 'process are sampled each second from `/proc/<pid>`. Goal: after the warm-up, memory and descriptors flat (growth'
    & $line "under $($Summary.MaxGrowthPercent)%)."
    & $line ''
    & $line '## The run'
    & $line ''
    & $line ("- When: {0} UTC, commit {1}, PsIpc {2}, PowerShell {3}, {4}." -f $Summary.StartedAt, $Summary.Commit, $Summary.ModuleVersion, $Summary.PwshVersion, $Summary.Runtime)
    & $line ("- Duration: **{0:0.#} minutes of load** ({1:n0} s), of which the first {2} s are warm-up and excluded; each end of the measured span is a window of {3} s." -f ($Summary.LoadSeconds / 60), $Summary.LoadSeconds, $Summary.WarmupSeconds, $Summary.WindowSeconds)
    & $line ("- Machine: {0} cores, load average {1} at the start and {2} at the end (shared with other work; every soak process ran under ``nice``)." -f $Summary.Cores, $Summary.LoadAverageStart, $Summary.LoadAverageEnd)
    & $line ("- Load: per transport ({0}), a client sends a batch of {1} messages every {2} ms (strings of 16 B to 4 KiB, byte arrays of 0 to 64 KiB (UDP: 8 KiB), objects as CliXml, or JSON over TCP, UDP and RabbitMQ) and waits for the echo of each (pipe, TCP, Unix socket, UDP servers echo with a ``-ScriptBlock`` handler); the segment server writes a new value each tick and its client reads it; the queue clients only send and their servers receive." -f ($Summary.Transports -join ', '), $Summary.BatchSize, $Summary.TickMilliseconds)
    & $line ("- Churn: {0} of {1} connect/close cycles, in rotation: a pipe, TCP and Unix socket client (one request and its reply each), a UDP client (one datagram), an open of the segment and of the queue; against the servers above, so their per-connection state comes and goes under load." -f $Summary.ChurnCyclesDone, $Summary.ChurnCycles)
    foreach ($n in $Notes) { & $line "- $n" }
    & $line ''
    & $line "![working set, descriptors and threads of every process over time]($PlotFile)"
    & $line ''
    & $line '## Growth from the end of the warm-up to the end'
    & $line ''
    & $line 'Working set: the median of the window after the warm-up against the median of the last window; trend: the'
    & $line 'least-squares slope over the whole measured span. Descriptors and threads: the most in the first window against'
    & $line 'the least in the last (a connection in flight at one sample is not growth; a leak is). "fds" leaves out the'
    & $line 'assemblies and native libraries the runtime keeps open (about 140 per pwsh; a code path first taken late loads'
    & $line 'one more), which "all fds" counts too.'
    & $line ''
    & $line 'Private: RssAnon, the part of the working set that is the process''s own heaps (the rest is mapped files, the'
    & $line 'runtime''s code and shared memory, such as a queue''s ring, which comes in page by page until it has gone round once).'
    & $line ''
    & $line 'Live heap: the managed heap after a full collection (`GC.GetTotalMemory` after `GC.Collect`), which each worker'
    & $line 'samples once a minute; the median of the first three samples after the warm-up against the median of the last'
    & $line 'three. It is what the process still holds: a leak grows it, while a GC that lets its heap get larger between'
    & $line 'collections grows only the working set.'
    & $line ''
    & $line '| process | working set after warm-up (MiB) | at the end (MiB) | growth | trend (MiB/h) | private after warm-up → end (MiB) | live heap after warm-up → end (MiB) | fds after warm-up | fds at the end | all fds after warm-up | all fds at the end | threads after warm-up | threads at the end |'
    & $line '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
    foreach ($p in $Summary.Processes) {
        $label = if ($p.PsIpc) { $p.Label } else { "$($p.Label) (not PsIpc: shown, not judged)" }
        $private = if ($p.PSObject.Properties['AnonWarmupMiB'] -and $null -ne $p.AnonWarmupMiB) { [string]::Format($inv, '{0:0.0} → {1:0.0}', $p.AnonWarmupMiB, $p.AnonEndMiB) } else { 'not sampled' }
        $live = if ($p.PSObject.Properties['HeapWarmupMiB'] -and $null -ne $p.HeapWarmupMiB) { [string]::Format($inv, '{0:0.0} → {1:0.0}', $p.HeapWarmupMiB, $p.HeapEndMiB) } else { 'not sampled' }
        & $line ([string]::Format($inv, '| {0} | {1:0.0} | {2:0.0} | {3:+0.00;-0.00;0.00}% | {4:+0.0;-0.0;0.0} | {5} | {6} | {7} | {8} | {9} | {10} | {11} | {12} |',
                $label, $p.RssWarmupMiB, $p.RssEndMiB, $p.RssGrowthPercent, $p.RssTrendMiBPerHour, $private, $live, $p.FdsWarmup, $p.FdsEnd, $p.AllFdsWarmup, $p.AllFdsEnd, $p.ThreadsWarmup, $p.ThreadsEnd))
    }
    & $line ''
    $verdict = if ($Summary.Passed -and $Summary.MemoryOk) { "**Flat**: every PsIpc process stayed under $($Summary.MaxGrowthPercent)% working-set growth, with no descriptor or thread growth and no worker error." }
    elseif ($Summary.Passed) { "**Descriptors and threads flat, memory not**: at least one PsIpc process grew $($Summary.MaxGrowthPercent)% or more (see the table)." }
    else { "**Not flat**: $($Summary.Problems -join '; ')" }
    & $line $verdict
    & $line ''
    & $line '## What each process did'
    & $line ''
    & $line 'Servers with a `-ScriptBlock` handler count what it handled (the requests of the churn included); the queue servers what they received.'
    & $line ''
    & $line '| process | seconds | sent | received or handled | lost (UDP) | reads / writes | churn cycles | errors |'
    & $line '|---|---:|---:|---:|---:|---:|---:|---:|'
    foreach ($w in $Summary.Workers) {
        $get = { param($n) if ($w.PSObject.Properties[$n]) { $w.$n } else { '' } }
        $rw = @((& $get 'reads'), (& $get 'writes')) | Where-Object { $_ -and $_ -ne 0 }
        & $line ("| {0} | {1} | {2} | {3} | {4} | {5} | {6} | {7} |" -f $w.label, $w.seconds, (& $get 'sent'), $(if ($w.PSObject.Properties['handled']) { $w.handled } else { & $get 'received' }), (& $get 'lost'), ($rw -join ' / '), (& $get 'cycles'), $w.errors)
    }
    & $line ''
    & $line '## Run it'
    & $line ''
    & $line '    dotnet pwsh -NoProfile -File ./build.ps1 Soak -Minutes 30'
    & $line ''
    & $line 'The Test task runs a one-minute version (`tests/Pester/Scenario.Soak.Tests.ps1`) that fails on descriptor or'
    & $line 'thread growth or a worker error, and writes nothing to docs/.'
    $m.ToString()
}
