# The shared memory rows of bench/Invoke-Bench.ps1 (issue 5, item 7): a queue of small messages
# pwsh to pwsh, a 1 MiB handoff, and the queue's C# core on its own. Dot-sourced by the harness, which
# calls Build-ShmAnchor, the Measure-Shm* rows, Get-SharedMemoryTargets and Get-SharedMemoryMethodNotes.
# Uses the harness's helpers (Measure-Repeated, New-Measurement, Start-BenchPwsh, ...) and its
# $script:Repetitions, $script:ModuleManifest, $script:Python, $script:Dotnet.

$script:ShmCounts = if ($Quick) {
    @{ QueuePsIpc = 100000; QueuePython = 100000; HandoffPsIpc = 300; HandoffPython = 300; HandoffMemcpy = 1000; Ring = 1000000; RingWarmUp = 200000 }
}
else {
    @{ QueuePsIpc = 1000000; QueuePython = 300000; HandoffPsIpc = 2000; HandoffPython = 2000; HandoffMemcpy = 4000; Ring = 5000000; RingWarmUp = 2000000 }
}
# The string row's queue holds all its messages (24-byte records) so the sender never waits for room;
# the handoff's holds 4 records of 1 MiB, as Python's buffer has 4 slots of 1 MiB.
$script:ShmQueueSize = 64MB
$script:ShmHandoffSlots = 4
$script:ShmHandoffQueueSize = $script:ShmHandoffSlots * (1MB + 8)

$script:RowShmStrings = '10. 16-byte strings, one way, over a shared memory queue'
$script:RowShmHandoff = '11. 1 MiB handoff through shared memory'
$script:RowShmRing = '12. shared memory queue core in C#, 16-byte messages'
# The anchor makes a new bytes object per message (bytes(shm.buf[slot])), as a PowerShell receiver gets a new byte[].
$script:ShmPythonHandoff = 'multiprocessing.shared_memory + 2 Semaphores'

function Build-ShmAnchor {
    # Builds bench/ShmAnchor (standalone, references src/PsIpc.Transport); returns the error text or $null.
    $project = Join-Path $PSScriptRoot '../ShmAnchor/ShmAnchor.csproj'
    Write-Host "  dotnet build $project -c Release"
    try {
        $handle = Start-BenchProcess -Label 'dotnet build ShmAnchor' -FilePath $script:Dotnet -ArgumentList @(
            'build', $project, '-c', 'Release', '-nologo', '-v', 'q')
        $null = Wait-BenchProcess -Handle $handle -TimeoutSeconds 300 -RawOutput
        $script:ShmAnchorDll = Join-Path $PSScriptRoot '../ShmAnchor/bin/Release/net10.0/ShmAnchor.dll'
        $null
    }
    catch {
        Write-Host "    $($_.Exception.Message)" -ForegroundColor Red
        "ShmAnchor did not build: $($_.Exception.Message)"
    }
}

function New-BenchShmName {
    $script:PipeCounter++
    "psipc-bench-shm-$PID-$script:PipeCounter"
}

function Invoke-PsIpcShmOneWay {
    # A receiver pwsh creates the queue and times first message to last; a sender pwsh prepares its
    # data, opens the queue by name and pipes the data into Send-IpcMessage.
    param([ValidateSet('Strings', 'Bytes')] [string] $Kind, [int] $Count, [long] $Size)
    Assert-PsIpcModule
    $name = New-BenchShmName
    $parameters = [ordered]@{ ModulePath = $script:ModuleManifest; Name = $name; Kind = $Kind; Count = $Count }
    $receiverParameters = [ordered]@{} + $parameters
    $receiverParameters.Size = $Size
    try {
        $receiver = Start-BenchPwsh -Label 'PsIpc queue receiver' -Worker PsIpcShmReceiver -Parameters $receiverParameters
        try {
            $sender = Start-BenchPwsh -Label 'PsIpc queue sender' -Worker PsIpcShmSender -Parameters $parameters
        }
        catch {
            Stop-BenchProcess $receiver
            throw
        }
        $received, $sent = Wait-BenchProcess -Handle $receiver, $sender -TimeoutSeconds 240
    }
    finally {
        # The receiver removes its queue; this is for a receiver that failed or was killed.
        if ($IsLinux) {
            Remove-Item -LiteralPath (Join-Path '/dev/shm' "psipc-$(& id -u)/$name") -ErrorAction Ignore
        }
    }
    $received | Add-Member -NotePropertyName senderSeconds -NotePropertyValue $sent.seconds -PassThru
}

function Invoke-PythonShmAnchor {
    param([ValidateSet('mp_queue.py', 'mp_shared_memory.py')] [string] $Script, [int] $Count)
    if (-not $script:Python) {
        throw 'python3 was not found on PATH.'
    }
    $handle = Start-BenchProcess -Label $Script -FilePath $script:Python -ArgumentList @(
        (Join-Path $PSScriptRoot "../anchors/$Script"), $Count)
    Wait-BenchProcess -Handle $handle -TimeoutSeconds 120
}

function Invoke-ShmAnchor {
    param([ValidateSet('ring', 'ring-batch', 'handoff', 'memcpy', 'memcpy-alloc')] [string] $Mode, [int] $Count, [int] $WarmUp = 0)
    if ($script:ShmAnchorBuildError) {
        throw $script:ShmAnchorBuildError
    }
    $handle = Start-BenchProcess -Label "ShmAnchor $Mode" -FilePath $script:Dotnet -ArgumentList @(
        $script:ShmAnchorDll, $Mode, $Count, $WarmUp)
    Wait-BenchProcess -Handle $handle -TimeoutSeconds 120
}

function Measure-ShmQueueStrings {
    $row = $script:RowShmStrings
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:ShmCounts
    $runs = Measure-Repeated 'PsIpc queue strings' { Invoke-PsIpcShmOneWay Strings $counts.QueuePsIpc $script:ShmQueueSize }
    $null = New-Measurement -Row $row -Implementation 'PsIpc queue' -Unit 'msg/s' -Runs $runs -Count $counts.QueuePsIpc
    $null = New-Measurement -Row $row -Implementation "PsIpc queue, sender's own clock" -Unit 'msg/s' -Runs $runs `
        -Count $counts.QueuePsIpc -Value { param($r) ($r.messages + 1) / $r.senderSeconds }
    $runs = Measure-Repeated 'multiprocessing.Queue put(str)' { Invoke-PythonShmAnchor mp_queue.py $counts.QueuePython }
    $null = New-Measurement -Row $row -Implementation 'multiprocessing.Queue' -Unit 'msg/s' -Runs $runs -Count $counts.QueuePython
}

function Measure-ShmHandoff {
    $row = $script:RowShmHandoff
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:ShmCounts
    $runs = Measure-Repeated 'PsIpc queue 1 MiB byte[] (pwsh)' { Invoke-PsIpcShmOneWay Bytes $counts.HandoffPsIpc $script:ShmHandoffQueueSize }
    $null = New-Measurement -Row $row -Implementation 'PsIpc queue, from PowerShell' -Unit 'GB/s' -Runs $runs -Count $counts.HandoffPsIpc
    $runs = Measure-Repeated 'multiprocessing.shared_memory handoff' { Invoke-PythonShmAnchor mp_shared_memory.py $counts.HandoffPython }
    $null = New-Measurement -Row $row -Implementation $script:ShmPythonHandoff -Unit 'GB/s' -Runs $runs -Count $counts.HandoffPython
    $runs = Measure-Repeated 'PsIpc queue 1 MiB, C# core (no pwsh)' { Invoke-ShmAnchor handoff $counts.HandoffPython }
    $null = New-Measurement -Row $row -Implementation 'PsIpc queue, C# core without PowerShell' -Unit 'GB/s' -Runs $runs -Count $counts.HandoffPython
    $runs = Measure-Repeated 'C# memcpy in and out, reused array' { Invoke-ShmAnchor memcpy $counts.HandoffMemcpy }
    $null = New-Measurement -Row $row -Implementation 'C# memcpy in + out (one process)' -Unit 'GB/s' -Runs $runs -Count $counts.HandoffMemcpy
    $runs = Measure-Repeated 'C# memcpy in and out, new byte[] each' { Invoke-ShmAnchor memcpy-alloc $counts.HandoffMemcpy }
    $null = New-Measurement -Row $row -Implementation 'C# memcpy in + out, new byte[] per message' -Unit 'GB/s' -Runs $runs -Count $counts.HandoffMemcpy
}

function Measure-ShmRing {
    $row = $script:RowShmRing
    Write-Host $row -ForegroundColor Cyan
    $count = $script:ShmCounts.Ring
    $warmUp = $script:ShmCounts.RingWarmUp
    $runs = Measure-Repeated 'queue core, Send per message' { Invoke-ShmAnchor ring $count $warmUp }
    $null = New-Measurement -Row $row -Implementation 'SharedMemoryQueue, Send per message' -Unit 'msg/s' -Runs $runs -Count $count
    $runs = Measure-Repeated 'queue core, SendMany of 256' { Invoke-ShmAnchor ring-batch $count $warmUp }
    $null = New-Measurement -Row $row -Implementation 'SharedMemoryQueue, SendMany of 256' -Unit 'msg/s' -Runs $runs -Count $count
}

function Get-SharedMemoryTargets {
    $queue = Find-Measurement $script:RowShmStrings 'PsIpc queue'
    New-Target 'queue strings vs PsIpc pipe strings (row 1)' '>= 1.30x' @($queue, (Find-Measurement $script:RowStrings 'PsIpc')) {
        param($shm, $pipe) (Format-Ratio ($shm / $pipe)), ($shm / $pipe -ge 1.3)
    }
    New-Target 'queue strings vs multiprocessing.Queue' '>= 1.50x' @($queue, (Find-Measurement $script:RowShmStrings 'multiprocessing.Queue')) {
        param($shm, $anchor) (Format-Ratio ($shm / $anchor)), ($shm / $anchor -ge 1.5)
    }
    Get-ShmHandoffTargets
    foreach ($line in 'SharedMemoryQueue, SendMany of 256', 'SharedMemoryQueue, Send per message') {
        New-Target "queue core in C# ($($line -replace '^SharedMemoryQueue, '))" '>= 10,000,000 msg/s' @((Find-Measurement $script:RowShmRing $line)) {
            param($rate) $rate.ToString('N0', $script:Invariant), ($rate -ge 1e7)
        }
    }
}

function Get-ShmHandoffTargets {
    # Row 11's targets (also run alone by -Only Bulk).
    New-Target '1 MiB handoff vs multiprocessing.shared_memory' '>= 1.20x' @((Find-Measurement $script:RowShmHandoff 'PsIpc queue, from PowerShell'), (Find-Measurement $script:RowShmHandoff $script:ShmPythonHandoff)) {
        param($shm, $anchor) (Format-Ratio ($shm / $anchor)), ($shm / $anchor -ge 1.2)
    }
    New-Target '1 MiB handoff vs C# memcpy in + out' 'context' @((Find-Measurement $script:RowShmHandoff 'PsIpc queue, from PowerShell'), (Find-Measurement $script:RowShmHandoff 'C# memcpy in + out (one process)')) {
        param($shm, $anchor) (Format-Ratio ($shm / $anchor)), $true
    } | ForEach-Object { if ($_.Result -eq 'PASS') { $_.Result = 'info' }; $_ }
}

function Get-SharedMemoryMethodNotes {
    $values = @{
        Repetitions = $script:Repetitions; PythonVersion = $script:PythonVersion; Slots = $script:ShmHandoffSlots
        QueueSize = ($script:ShmQueueSize / 1MB); HandoffQueueSize = $script:ShmHandoffQueueSize.ToString('N0', $script:Invariant)
    }
    foreach ($key in $script:ShmCounts.Keys) {
        $values[$key] = ([int]$script:ShmCounts[$key]).ToString('N0', $script:Invariant)
    }
    $text = @'
Rows 10-12, **shared memory** (issue 5). The one-way figures are timed like rows 1-3: by the receiver,
from the first message taken to the last.

- Row 10, **queue of small strings**, pwsh to pwsh: the receiver pwsh runs
  `New-SharedMemory -Name $name -Size <<QueueSize>>MB -Queue`, then `Receive-IpcMessage $q -Count $n -TimeoutSeconds 120 | Measure-BenchStream`;
  the sender pwsh builds its <<QueuePsIpc>> strings first, then `New-SharedMemory -Name $name -Open` and
  `$data | Send-IpcMessage $q` (bench/workers/PsIpcShm*.ps1). The queue holds every message, so the sender
  never waits for room. The "sender's own clock" line runs from the queue opened to the last Send returned.
  The target compares with row 1's PsIpc pipe figure of the same run. Anchor: bench/anchors/mp_queue.py
  (<<PythonVersion>>): a `multiprocessing.Process` child puts <<QueuePython>> 16-character strings on a
  `multiprocessing.Queue`, the parent takes them with `get()`.
- Row 11, **1 MiB handoff**: a writer process writes 1 MiB into shared memory, a reader process copies it out
  into a new byte array, repeated; <<Slots>> MiB of buffer on each side. PsIpc is measured **from PowerShell**,
  through the queue (the PsIpc way for one process to hand data to another; a bare segment has no
  "new data" signal): the scheme of row 10 with `-Kind Bytes`, a queue of -Size <<HandoffQueueSize>> (room for
  <<Slots>> records of 1 MiB, so a writer that is <<Slots>> messages ahead waits), the sender piping
  <<HandoffPsIpc>> references to one 1 MiB byte[] into `Send-IpcMessage $q` (each copied into the ring), the
  receiver's `Receive-IpcMessage` copying each one out into a new byte[]. A second line measures the same
  handoff in C# without PowerShell (bench/ShmAnchor `handoff`: `Send` of 1 MiB per message, `Receive` into new
  byte[]s, two processes, a queue of <<Slots>> records, <<HandoffPython>> messages). Anchor: bench/anchors/mp_shared_memory.py:
  a `SharedMemory` block of <<Slots>> slots of 1 MiB and two `multiprocessing.Semaphore`s (free, filled); the child
  writes `shm.buf[slot] = payload`, the parent copies out `bytes(shm.buf[slot])`, a new bytes object per message
  as a PowerShell receiver gets a new byte[] (CPython's allocator hands the freed 1 MiB block back at once, so
  the new object costs it a copy and no page faults); <<HandoffPython>> messages.
  Ceiling: bench/ShmAnchor `memcpy` (net10.0, Release), one process, no synchronization: <<HandoffMemcpy>> times
  `Span.CopyTo` of 1 MiB into one of <<Slots>> slots of a native buffer and back out into one reused byte[] (second
  line: a new byte[] per message, as a receiver that hands messages on must).
- Row 12, **the queue core in C#**, no PowerShell: bench/ShmAnchor `ring` creates a SharedMemoryQueue of
  16 MiB and starts a copy of itself as the single producer; the producer sends <<RingWarmUp>> + <<Ring>> 16-byte
  messages (MessageFormat.Bytes), with `Send` once per message or with `SendMany` of 256 messages per call; the
  consumer takes them with `Receive(into, 4096, ...)` (each message a new byte[] in an IpcMessage, as
  Receive-IpcMessage gets them). Two processes, timed by the consumer from the Receive that completed the
  <<RingWarmUp>> untimed messages (both processes' tiered JIT settles meanwhile: without them a SendMany run of
  5,000,000 measured 7.7-8.2M msg/s, with them 14-22M on the same machine) to the last message.
'@
    foreach ($key in $values.Keys) {
        $text = $text.Replace("<<$key>>", [string]$values[$key])
    }
    $text
}
