# The bulk rows of bench/Invoke-Bench.ps1 (issue 12, items 3 and 5): 1 MiB messages against the honest C#
# ceiling (a C# program moving them over the same kind of socket into a new byte[] per message), and
# Receive-IpcMessage -Buffer (one reused array) over a pipe and a shared memory queue. Dot-sourced by the
# harness, which calls Build-RawBulkAnchor, Measure-Bulk, Get-BulkTargets and Get-BulkMethodNotes. The other
# figures the targets need are row 3's (PsIpc with a new byte[] per message, multiprocessing.Pipe) and row
# 11's (multiprocessing.shared_memory), from the same run; `-Only Bulk` runs rows 3, 11 and 16.
# Uses the harness's helpers (Measure-Repeated, New-Measurement, Start-BenchPwsh, ...) and $script:ModuleManifest.

$script:BulkCounts = if ($Quick) {
    @{ Raw = 500; PipeBuffer = 200; ShmBuffer = 300 }
}
else {
    @{ Raw = 4000; PipeBuffer = 2000; ShmBuffer = 2000 }
}

$script:RowBulk = '16. 1 MiB byte[] one way: the C# ceiling and receiving into a buffer'

function Build-RawBulkAnchor {
    # Builds bench/RawBulk (standalone); returns the error text or $null.
    $project = Join-Path $PSScriptRoot '../RawBulk/RawBulk.csproj'
    Write-Host "  dotnet build $project -c Release"
    try {
        $handle = Start-BenchProcess -Label 'dotnet build RawBulk' -FilePath $script:Dotnet -ArgumentList @(
            'build', $project, '-c', 'Release', '-nologo', '-v', 'q')
        $null = Wait-BenchProcess -Handle $handle -TimeoutSeconds 300 -RawOutput
        $script:RawBulkDll = Join-Path $PSScriptRoot '../RawBulk/bin/Release/net10.0/RawBulk.dll'
        $null
    }
    catch {
        Write-Host "    $($_.Exception.Message)" -ForegroundColor Red
        "RawBulk did not build: $($_.Exception.Message)"
    }
}

function Invoke-RawBulkAnchor {
    param([ValidateSet('alloc', 'reuse')] [string] $Mode, [int] $Count)
    if ($script:RawBulkBuildError) {
        throw $script:RawBulkBuildError
    }
    $handle = Start-BenchProcess -Label "RawBulk $Mode" -FilePath $script:Dotnet -ArgumentList @($script:RawBulkDll, $Mode, $Count)
    Wait-BenchProcess -Handle $handle -TimeoutSeconds 120
}

function Invoke-PsIpcBulkBuffer {
    # A receiver pwsh (Receive-IpcMessage -Buffer) and the sender pwsh of row 3 (pipe) or row 11 (queue).
    param([ValidateSet('Pipe', 'SharedMemory')] [string] $Transport, [int] $Count)
    Assert-PsIpcModule
    $name = if ($Transport -eq 'Pipe') { New-BenchPipeName } else { New-BenchShmName }
    $receiverParameters = [ordered]@{ ModulePath = $script:ModuleManifest; Name = $name; Transport = $Transport; Count = $Count }
    if ($Transport -eq 'SharedMemory') { $receiverParameters.Size = $script:ShmHandoffQueueSize }
    $senderParameters = [ordered]@{ ModulePath = $script:ModuleManifest; Name = $name; Kind = 'Bytes'; Count = $Count }
    try {
        $receiver = Start-BenchPwsh -Label "PsIpc -Buffer receiver ($Transport)" -Worker PsIpcBulkReceiver -Parameters $receiverParameters
        try {
            $sender = Start-BenchPwsh -Label "PsIpc sender ($Transport)" -Worker ($Transport -eq 'Pipe' ? 'PsIpcSender' : 'PsIpcShmSender') -Parameters $senderParameters
        }
        catch {
            Stop-BenchProcess $receiver
            throw
        }
        $received, $null = Wait-BenchProcess -Handle $receiver, $sender -TimeoutSeconds 240
    }
    finally {
        if ($Transport -eq 'SharedMemory' -and $IsLinux) {
            Remove-Item -LiteralPath (Join-Path '/dev/shm' "psipc-$(& id -u)/$name") -ErrorAction Ignore
        }
    }
    $received
}

function Measure-Bulk {
    $row = $script:RowBulk
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:BulkCounts
    $runs = Measure-Repeated 'C# ceiling, Unix socket, new byte[] each' { Invoke-RawBulkAnchor alloc $counts.Raw }
    $null = New-Measurement -Row $row -Implementation 'C# ceiling: Unix socket, new byte[] per message' -Unit 'GB/s' -Runs $runs -Count $counts.Raw
    $runs = Measure-Repeated 'C# ceiling, Unix socket, reused buffer' { Invoke-RawBulkAnchor reuse $counts.Raw }
    $null = New-Measurement -Row $row -Implementation 'C# ceiling: Unix socket, one reused buffer' -Unit 'GB/s' -Runs $runs -Count $counts.Raw
    $runs = Measure-Repeated 'PsIpc pipe, Receive-IpcMessage -Buffer' { Invoke-PsIpcBulkBuffer Pipe $counts.PipeBuffer }
    $null = New-Measurement -Row $row -Implementation 'PsIpc pipe, Receive-IpcMessage -Buffer' -Unit 'GB/s' -Runs $runs -Count $counts.PipeBuffer
    $runs = Measure-Repeated 'PsIpc queue, Receive-IpcMessage -Buffer' { Invoke-PsIpcBulkBuffer SharedMemory $counts.ShmBuffer }
    $null = New-Measurement -Row $row -Implementation 'PsIpc shared memory queue, Receive-IpcMessage -Buffer' -Unit 'GB/s' -Runs $runs -Count $counts.ShmBuffer
}

function Get-BulkTargets {
    $ceiling = Find-Measurement $script:RowBulk 'C# ceiling: Unix socket, new byte[] per message'
    $pipeBuffer = Find-Measurement $script:RowBulk 'PsIpc pipe, Receive-IpcMessage -Buffer'
    New-Target '1 MiB byte[] pwsh to pwsh, new byte[] per message (row 3) vs the C# ceiling, new byte[] per message' '>= 0.80x' @((Find-Measurement $script:RowBytes 'PsIpc'), $ceiling) {
        param($psipc, $csharp) (Format-Ratio ($psipc / $csharp)), ($psipc / $csharp -ge 0.8)
    }
    New-Target '1 MiB into a caller''s buffer (Receive-IpcMessage -Buffer) vs multiprocessing.Pipe send_bytes/recv_bytes' '>= 1.50x' @($pipeBuffer, (Find-Measurement $script:RowBytes 'multiprocessing.Pipe send_bytes')) {
        param($psipc, $python) (Format-Ratio ($psipc / $python)), ($psipc / $python -ge 1.5)
    }
    $context = @(
        , @('1 MiB into a caller''s buffer (-Buffer) vs the C# ceiling with one reused buffer', $pipeBuffer, (Find-Measurement $script:RowBulk 'C# ceiling: Unix socket, one reused buffer'))
        , @('1 MiB shared memory handoff into a caller''s buffer (-Buffer) vs multiprocessing.shared_memory', (Find-Measurement $script:RowBulk 'PsIpc shared memory queue, Receive-IpcMessage -Buffer'), (Find-Measurement $script:RowShmHandoff $script:ShmPythonHandoff))
    )
    foreach ($pair in $context) {
        $name, $a, $b = $pair
        New-Target $name 'context' @($a, $b) { param($x, $y) (Format-Ratio ($x / $y)), $true } |
            ForEach-Object { if ($_.Result -eq 'PASS') { $_.Result = 'info' }; $_ }
    }
}

function Get-BulkMethodNotes {
    $values = @{}
    foreach ($key in $script:BulkCounts.Keys) { $values[$key] = ([int]$script:BulkCounts[$key]).ToString('N0', $script:Invariant) }
    $text = @'
Row 16, **1 MiB: the C# ceiling and receiving into a buffer** (issue 12), timed like rows 1-3 by the receiver
from the first message taken to the last, each run in fresh processes.

- **C# ceiling** (bench/RawBulk, net10.0, Release, <<Raw>> messages): two processes over the kind of socket a
  PsIpc pipe is on Linux (an AF_UNIX stream socket with 1 MiB kernel buffers each way, blocking calls); the
  sender writes a 4-byte length and the 1 MiB payload per message; the receiver reads each message into a new
  array from `GC.AllocateUninitializedArray<byte>` (the cheapest new byte[] .NET offers, as a receiver that
  hands each message on must), or, second line, into one reused buffer (the wire's own ceiling). No handshake,
  no message types, no PowerShell: what any C# program on this socket can reach. Row 3's PsIpc line (pwsh to
  pwsh, a new byte[] per message written to the pipeline) is compared with the first line.
- **PsIpc, Receive-IpcMessage -Buffer** (bench/workers/PsIpcBulkReceiver.ps1): the receiver pwsh runs
  `$buffer = [byte[]]::new(1MB)`, then `Receive-IpcMessage $channel -Buffer $buffer -Count $n -TimeoutSeconds 120 | Measure-BenchStream`:
  each message is copied into the one array and its length goes down the pipeline. The sender is row 3's
  (pipe: `New-IpcPipe -Connect` + `$data | Send-IpcMessage`, <<PipeBuffer>> messages) or row 11's (shared memory
  queue of room for 4 messages: `New-SharedMemory -Open` + `$data | Send-IpcMessage`, <<ShmBuffer>> messages).
  The pipe line is compared with row 3's multiprocessing.Pipe `send_bytes`/`recv_bytes` (a new bytes object
  per message: CPython's allocator gives the freed 1 MiB block back at once, so that costs it a copy, not a
  page fault), the queue line with row 11's multiprocessing.shared_memory anchor (context).
'@
    foreach ($key in $values.Keys) { $text = $text.Replace("<<$key>>", [string]$values[$key]) }
    $text
}
