<#
.SYNOPSIS
    Measures PsIpc against its anchors in one run on this machine and writes docs/benchmarks.md.

.DESCRIPTION
    Runs, side by side in one run: Python's multiprocessing.Pipe, Start-Job, Start-ThreadJob, a raw
    C# named pipe program, PowerShell's own pipeline floor, and PsIpc (pwsh process to pwsh process
    through the staged module). Every figure is the median of a few runs, each in fresh processes.
    Prints the results and the issue's targets (PASS/MISS) and writes them, with the machine facts
    and how each row is measured, to docs/benchmarks.md.

    A failing row is reported as ERROR with its message; the other rows still run, and the script
    exits with code 1 at the end. A MISS is a result, not a failure: it does not change the exit code.

.PARAMETER ModulePath
    The staged module: the directory holding PsIpc.psd1 (./build.ps1 Build puts it at output/PsIpc),
    or the manifest itself.

.PARAMETER Quick
    Smaller counts and one run per figure: a smoke test that finishes in under two minutes. Its
    figures are noisy; use the full run for numbers.

.PARAMETER OutputPath
    Where the markdown report goes (default: docs/benchmarks.md of this repository; with -Only,
    output/bench-<sections>.md, so that a partial run never replaces the full report).

.PARAMETER Only
    Runs only these sections: Queue (rows 13-14: RabbitMQ, with a private broker started for them),
    Request (row 15: Invoke-IpcRequest and IpcChannel.Request; its targets need row 4, so they read n/a),
    Bulk (rows 3, 11 and 16: 1 MiB messages, the C# ceiling, Receive-IpcMessage -Buffer),
    Scale (row 17: 1,000 and 10,000 concurrent clients of one socket server; builds bench/RawSocket).
    Without -Only every row runs.

.EXAMPLE
    dotnet pwsh -NoProfile -File ./bench/Invoke-Bench.ps1 -ModulePath ./output/PsIpc -Quick
#>
[CmdletBinding()]
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../output/PsIpc'),
    [switch] $Quick,
    [string] $OutputPath = (Join-Path $PSScriptRoot '../docs/benchmarks.md'),
    [ValidateSet('Queue', 'Request', 'Bulk', 'Scale')] [string[]] $Only
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$script:RepoRoot = [IO.Path]::GetFullPath((Join-Path $PSScriptRoot '..'))
$script:WorkerRoot = Join-Path $PSScriptRoot 'workers'
. (Join-Path $PSScriptRoot 'lib/BenchProcess.ps1')
. (Join-Path $PSScriptRoot 'lib/BenchReport.ps1')
. (Join-Path $PSScriptRoot 'lib/BenchSharedMemory.ps1')   # rows 10-12
. (Join-Path $PSScriptRoot 'lib/BenchQueue.ps1')          # rows 13-14
. (Join-Path $PSScriptRoot 'lib/BenchRequest.ps1')        # row 15
. (Join-Path $PSScriptRoot 'lib/BenchBulk.ps1')           # row 16
. (Join-Path $PSScriptRoot 'lib/BenchScale.ps1')          # row 17

# Messages per run. Anchors that are much faster or slower than PsIpc get counts that keep each run
# between about half a second and five seconds; rates are per message, so counts need not match.
$script:Counts = if ($Quick) {
    @{
        StringsPsIpc = 100000; StringsPython = 100000; StringsRaw = 1000000
        StringsJob = 20000; StringsThreadJob = 50000; StringsFloor = 100000
        ObjectsPsIpc = 20000; ObjectsJob = 5000; ObjectsThreadJob = 20000; ObjectsFloor = 50000
        BytesPsIpc = 200; BytesPython = 300; BytesRaw = 500
        RoundTripPsIpc = 1000; RoundTripPython = 5000; RoundTripRaw = 5000; RoundTripFloor = 5000
        MemorySmall = 100000; MemoryLarge = 1000000
        SocketRoundTripPsIpc = 500; SocketRoundTripPython = 5000; SocketRoundTripServer = 1000; SocketRoundTripRaw = 5000
        SocketClients = 100; SocketRoundsPsIpc = 10; SocketRoundsPython = 50; SocketRoundsServer = 20; SocketRoundsRaw = 100; SocketWarmUp = 10
        SocketStrings = 100000; LoadClients = 200; LoadRounds = 2
    }
}
else {
    @{
        StringsPsIpc = 1000000; StringsPython = 500000; StringsRaw = 5000000
        StringsJob = 100000; StringsThreadJob = 300000; StringsFloor = 500000
        ObjectsPsIpc = 100000; ObjectsJob = 30000; ObjectsThreadJob = 200000; ObjectsFloor = 200000
        BytesPsIpc = 2000; BytesPython = 2000; BytesRaw = 4000
        RoundTripPsIpc = 5000; RoundTripPython = 20000; RoundTripRaw = 20000; RoundTripFloor = 20000
        MemorySmall = 100000; MemoryLarge = 1000000
        SocketRoundTripPsIpc = 1000; SocketRoundTripPython = 20000; SocketRoundTripServer = 2000; SocketRoundTripRaw = 20000
        SocketClients = 100; SocketRoundsPsIpc = 20; SocketRoundsPython = 200; SocketRoundsServer = 50; SocketRoundsRaw = 300; SocketWarmUp = 10
        SocketStrings = 500000; LoadClients = 1000; LoadRounds = 2
    }
}
$script:Repetitions = if ($Quick) { 1 } else { 5 }
# Row 9 (1000 clients, ~15 s a run) is repeated fewer times: it reports errors, not a speed.
$script:LoadRepetitions = if ($Quick) { 1 } else { 3 }
$script:Measurements = [System.Collections.Generic.List[object]]::new()
$script:PipeCounter = 0

$script:RowStrings = '1. 16-byte strings, one way'
$script:RowObjects = '2. pscustomobjects (4 properties), one way'
$script:RowBytes = '3. 1 MiB byte[], one way'
$script:RowRoundTrip = '4. request/reply round trip'
$script:RowMemory = '5. receiver peak working set'
$script:RowSocketRoundTrip = '6. TCP request/reply round trip'
$script:RowSocketClients = '7. TCP request/reply, 100 concurrent clients'
$script:RowSocketStrings = '8. 16-byte strings, one way, over sockets'
$script:RowSocketLoad = '9. concurrent clients served'

#region Implementations: each call is one run and returns one JSON result

function Resolve-ModuleManifest {
    param([string] $Path)
    $manifest = if ($Path -like '*.psd1') { $Path } else { Join-Path $Path 'PsIpc.psd1' }
    if (Test-Path $manifest -PathType Leaf) { [IO.Path]::GetFullPath($manifest) }
}

function New-BenchPipeName {
    $script:PipeCounter++
    "psipc-bench-$PID-$script:PipeCounter"
}

function Assert-PsIpcModule {
    if (-not $script:ModuleManifest) {
        throw "No staged module at '$ModulePath' (run: dotnet pwsh -NoProfile -File ./build.ps1 Build)."
    }
}

function Invoke-PsIpcOneWay {
    # A receiver pwsh serves the pipe and times first message to last; a sender pwsh prepares its
    # data, connects and pipes it into Send-IpcMessage.
    param([string] $Kind, [int] $Count)
    Assert-PsIpcModule
    $parameters = [ordered]@{ ModulePath = $script:ModuleManifest; Name = (New-BenchPipeName); Kind = $Kind; Count = $Count }
    $receiver = Start-BenchPwsh -Label 'PsIpc receiver' -Worker PsIpcReceiver -Parameters $parameters
    try {
        $sender = Start-BenchPwsh -Label 'PsIpc sender' -Worker PsIpcSender -Parameters $parameters
    }
    catch {
        Stop-BenchProcess $receiver
        throw
    }
    $received, $sent = Wait-BenchProcess -Handle $receiver, $sender -TimeoutSeconds 240
    $received | Add-Member -NotePropertyName senderSeconds -NotePropertyValue $sent.seconds -PassThru
}

function Invoke-PsIpcRoundTrip {
    param([int] $Count)
    Assert-PsIpcModule
    $name = New-BenchPipeName
    $echo = Start-BenchPwsh -Label 'PsIpc echo' -Worker PsIpcEcho -Parameters ([ordered]@{
            ModulePath = $script:ModuleManifest; Name = $name
        })
    try {
        $client = Start-BenchPwsh -Label 'PsIpc round trip' -Worker PsIpcRoundTrip -Parameters ([ordered]@{
                ModulePath = $script:ModuleManifest; Name = $name; Count = $Count
            })
    }
    catch {
        Stop-BenchProcess $echo
        throw
    }
    $trips, $echoed = Wait-BenchProcess -Handle $client, $echo -TimeoutSeconds 240
    if ($echoed.messages -lt $trips.messages) {
        throw "the echo reports $($echoed.messages) messages for $($trips.messages) timed round trips"
    }
    $trips
}

function Invoke-PythonAnchor {
    param([ValidateSet('strings', 'bytes', 'roundtrip')] [string] $Mode, [int] $Count)
    if (-not $script:Python) {
        throw 'python3 was not found on PATH.'
    }
    $handle = Start-BenchProcess -Label "mp_pipe.py $Mode" -FilePath $script:Python -ArgumentList @(
        (Join-Path $PSScriptRoot 'anchors/mp_pipe.py'), $Mode, $Count)
    Wait-BenchProcess -Handle $handle -TimeoutSeconds 120
}

function New-BenchReadyFile {
    # Where a socket server worker publishes its endpoint (BenchSocket.ps1); removed by the caller.
    Join-Path ([IO.Path]::GetTempPath()) "$(New-BenchPipeName).ready"
}

function Remove-BenchReadyFile {
    param([string] $ReadyFile)
    Remove-Item -LiteralPath $ReadyFile, "$ReadyFile.done" -ErrorAction Ignore
}

function Invoke-PsIpcSocketEcho {
    # An echo pwsh serves Start-IpcSocketServer -Port 0 -ScriptBlock { param($message) $message };
    # a client pwsh connects $Clients clients to it and times the round trips. The result is the
    # client's, with the server's counters added and errors summed over both sides.
    param([int] $Clients, [int] $Count, [int] $Rounds)
    Assert-PsIpcModule
    $readyFile = New-BenchReadyFile
    try {
        $echo = Start-BenchPwsh -Label 'PsIpc socket echo' -Worker PsIpcSocketEcho -Parameters ([ordered]@{
                ModulePath = $script:ModuleManifest; ReadyFile = $readyFile
            })
        try {
            $client = Start-BenchPwsh -Label "PsIpc socket clients ($Clients)" -Worker PsIpcSocketClients -Parameters ([ordered]@{
                    ModulePath = $script:ModuleManifest; ReadyFile = $readyFile; Clients = $Clients; Count = $Count; Rounds = $Rounds
                })
        }
        catch {
            Stop-BenchProcess $echo
            throw
        }
        $trips, $server = Wait-BenchProcess -Handle $client, $echo -TimeoutSeconds 240
    }
    finally {
        Remove-BenchReadyFile $readyFile
    }
    $serverErrors = $server.handlerErrors + $server.connectionErrors + $server.connectionsRefused + $server.stillConnected
    if ($Clients -eq 1 -and ($serverErrors -gt 0 -or $server.messagesReceived -lt $trips.messages)) {
        throw "the echo server reports $($server.messagesReceived) messages for $($trips.messages) round trips, $serverErrors error(s)"
    }
    foreach ($name in $server.psobject.Properties.Name) {
        $trips | Add-Member -NotePropertyName "server_$name" -NotePropertyValue $server.$name
    }
    $trips.errors += $serverErrors
    if ($trips.errors -gt 0) {
        $shown = if ($trips.psobject.Properties['firstErrors']) { $trips.firstErrors -join '; ' }
        Write-Host "    $($trips.errors) error(s): server $($server | ConvertTo-Json -Compress); client: $shown" -ForegroundColor Yellow
    }
    $trips
}

function Invoke-PsIpcSocketOneWay {
    # Row 1's scheme over a socket: a receiver pwsh serves Start-IpcSocketServer (TCP port 0, or a
    # Unix socket) and times first message to last; a sender pwsh connects and pipes its data.
    param([ValidateSet('Tcp', 'Unix')] [string] $Transport, [string] $Kind, [int] $Count)
    Assert-PsIpcModule
    $readyFile = New-BenchReadyFile
    $receiverParameters = [ordered]@{ ModulePath = $script:ModuleManifest; ReadyFile = $readyFile; Kind = $Kind; Count = $Count }
    if ($Transport -eq 'Unix') {
        $receiverParameters.Path = Join-Path ([IO.Path]::GetTempPath()) "$(New-BenchPipeName).sock"
    }
    try {
        $receiver = Start-BenchPwsh -Label "PsIpc $Transport receiver" -Worker PsIpcSocketReceiver -Parameters $receiverParameters
        try {
            $sender = Start-BenchPwsh -Label "PsIpc $Transport sender" -Worker PsIpcSocketSender -Parameters ([ordered]@{
                    ModulePath = $script:ModuleManifest; ReadyFile = $readyFile; Kind = $Kind; Count = $Count
                })
        }
        catch {
            Stop-BenchProcess $receiver
            throw
        }
        $received, $sent = Wait-BenchProcess -Handle $receiver, $sender -TimeoutSeconds 240
    }
    finally {
        Remove-BenchReadyFile $readyFile
    }
    $received | Add-Member -NotePropertyName senderSeconds -NotePropertyValue $sent.seconds -PassThru
}

function Invoke-AsyncioAnchor {
    param([ValidateSet('roundtrip', 'clients')] [string] $Mode, [int[]] $Arguments)
    if (-not $script:Python) {
        throw 'python3 was not found on PATH.'
    }
    $handle = Start-BenchProcess -Label "asyncio_echo.py $Mode" -FilePath $script:Python -ArgumentList (@(
            (Join-Path $PSScriptRoot 'anchors/asyncio_echo.py'), $Mode) + @($Arguments | ForEach-Object { [string]$_ }))
    Wait-BenchProcess -Handle $handle -TimeoutSeconds 120
}

function Build-RawSocketAnchor {
    # Builds bench/RawSocket (the raw C# echo server and the load generator of rows 6-7, standalone);
    # returns the error text or $null.
    $project = Join-Path $PSScriptRoot 'RawSocket/RawSocket.csproj'
    Write-Host "  dotnet build $project -c Release"
    try {
        $handle = Start-BenchProcess -Label 'dotnet build RawSocket' -FilePath $script:Dotnet -ArgumentList @(
            'build', $project, '-c', 'Release', '-nologo', '-v', 'q')
        $null = Wait-BenchProcess -Handle $handle -TimeoutSeconds 300 -RawOutput
        $script:RawSocketDll = Join-Path $PSScriptRoot 'RawSocket/bin/Release/net10.0/RawSocket.dll'
        $null
    }
    catch {
        Write-Host "    $($_.Exception.Message)" -ForegroundColor Red
        "RawSocket did not build: $($_.Exception.Message)"
    }
}

function Invoke-SocketServerLoad {
    # One echo server process (PsIpc: Start-IpcSocketServer -ScriptBlock { param($message) $message } in a
    # pwsh; Asyncio: asyncio_echo.py server; Raw: the raw C# echo server) and the same load generator
    # against each (bench/RawSocket `clients`, speaking the server's protocol): $Clients connections, then
    # $WarmUp untimed and $Rounds timed round trips per client, all clients at once. The result is the
    # generator's, with the server's errors added.
    param(
        [ValidateSet('PsIpc', 'Asyncio', 'Raw')] [string] $Server,
        [int] $Clients,
        [int] $Rounds,
        [int] $WarmUp
    )
    if ($script:RawSocketBuildError) {
        throw $script:RawSocketBuildError
    }
    $readyFile = New-BenchReadyFile
    try {
        $serverHandle = switch ($Server) {
            'PsIpc' {
                Assert-PsIpcModule
                Start-BenchPwsh -Label 'PsIpc socket echo' -Worker PsIpcSocketEcho -Parameters ([ordered]@{
                        ModulePath = $script:ModuleManifest; ReadyFile = $readyFile
                    })
            }
            'Asyncio' {
                if (-not $script:Python) { throw 'python3 was not found on PATH.' }
                Start-BenchProcess -Label 'asyncio_echo.py server' -FilePath $script:Python -ArgumentList @(
                    (Join-Path $PSScriptRoot 'anchors/asyncio_echo.py'), 'server', $readyFile)
            }
            'Raw' {
                Start-BenchProcess -Label 'RawSocket server' -FilePath $script:Dotnet -ArgumentList @($script:RawSocketDll, 'server', $readyFile)
            }
        }
        try {
            $protocol = if ($Server -eq 'PsIpc') { 'psipc' } else { 'raw' }
            $generator = Start-BenchProcess -Label "RawSocket clients ($Clients, $protocol)" -FilePath $script:Dotnet -ArgumentList @(
                $script:RawSocketDll, 'clients', $readyFile, $protocol, [string]$Clients, [string]$Rounds, [string]$WarmUp)
        }
        catch {
            Stop-BenchProcess $serverHandle
            throw
        }
        $trips, $served = Wait-BenchProcess -Handle $generator, $serverHandle -TimeoutSeconds 240
    }
    finally {
        Remove-BenchReadyFile $readyFile
    }
    if ($Server -eq 'PsIpc') {
        $trips.errors += $served.handlerErrors + $served.connectionErrors + $served.connectionsRefused + $served.stillConnected
    }
    if ($trips.errors -gt 0) {
        $shown = if ($trips.psobject.Properties['firstError']) { $trips.firstError }
        Write-Host "    $($trips.errors) error(s): server $($served | ConvertTo-Json -Compress); generator: $shown" -ForegroundColor Yellow
    }
    $trips
}

function Build-RawPipeAnchor {
    # Builds bench/RawPipe (standalone, not part of PsIpc.slnx); returns the error text or $null.
    $project = Join-Path $PSScriptRoot 'RawPipe/RawPipe.csproj'
    Write-Host "  dotnet build $project -c Release"
    try {
        $handle = Start-BenchProcess -Label 'dotnet build RawPipe' -FilePath $script:Dotnet -ArgumentList @(
            'build', $project, '-c', 'Release', '-nologo', '-v', 'q')
        $null = Wait-BenchProcess -Handle $handle -TimeoutSeconds 300 -RawOutput
        $script:RawPipeDll = Join-Path $PSScriptRoot 'RawPipe/bin/Release/net10.0/RawPipe.dll'
        $null
    }
    catch {
        Write-Host "    $($_.Exception.Message)" -ForegroundColor Red
        "RawPipe did not build: $($_.Exception.Message)"
    }
}

function Invoke-RawPipeAnchor {
    param([ValidateSet('strings', 'bytes', 'bytes-alloc', 'roundtrip')] [string] $Mode, [int] $Count)
    if ($script:RawPipeBuildError) {
        throw $script:RawPipeBuildError
    }
    $handle = Start-BenchProcess -Label "RawPipe $Mode" -FilePath $script:Dotnet -ArgumentList @(
        $script:RawPipeDll, $Mode, $Count)
    Wait-BenchProcess -Handle $handle -TimeoutSeconds 120
}

function Invoke-JobAnchor {
    param([ValidateSet('Job', 'ThreadJob')] [string] $JobType, [string] $Kind, [int] $Count)
    Invoke-BenchPwsh -Label "Start-$JobType" -Worker JobAnchor -TimeoutSeconds 180 -Parameters ([ordered]@{
            JobType = $JobType; Kind = $Kind; Count = $Count
        })
}

function Invoke-PipelineFloor {
    param([string] $Kind, [int] $Count)
    Invoke-BenchPwsh -Label 'pipeline floor' -Worker PipelineFloor -TimeoutSeconds 180 -Parameters ([ordered]@{
            Kind = $Kind; Count = $Count
        })
}

#endregion

#region Rows

function Measure-JobAnchors {
    # Start-Job and Start-ThreadJob for rows 1 and 2: the sink's first-to-last figure, and the wall
    # clock from Start-*Job to the last item as a second line.
    param([string] $Row, [string] $Kind)
    foreach ($jobType in 'Job', 'ThreadJob') {
        $count = $script:Counts["$Kind$jobType"]
        $runs = Measure-Repeated "Start-$jobType $($Kind.ToLower())" { Invoke-JobAnchor $jobType $Kind $count }
        $null = New-Measurement -Row $Row -Implementation "Start-$jobType" -Unit 'msg/s' -Runs $runs -Count $count
        $null = New-Measurement -Row $Row -Implementation "Start-$jobType, wall clock incl. job start" -Unit 'msg/s' `
            -Runs $runs -Count $count -Value { param($r) ($r.messages + 1) / $r.wallSeconds }
    }
}

function Measure-PipelineFloor {
    param([string] $Row, [string] $Kind)
    $count = $script:Counts["${Kind}Floor"]
    $runs = Measure-Repeated "pipeline floor, $($Kind.ToLower())" { Invoke-PipelineFloor $Kind $count }
    $consumers = [ordered]@{
        noOpCmdlet    = 'pipeline floor: $data | no-op binary cmdlet'
        forEachObject = 'pipeline floor: $data | ForEach-Object { }'
        countingSink  = 'pipeline floor: $data | counting sink'
        outNull       = 'pipeline floor: $data | Out-Null (compiled away)'
    }
    foreach ($key in $consumers.Keys) {
        $property = "${key}Seconds"
        $null = New-Measurement -Row $Row -Implementation $consumers[$key] -Unit 'msg/s' -Runs $runs -Count $count `
            -Value ([scriptblock]::Create("param(`$r) `$r.messages / `$r.$property"))
    }
}

function Measure-SmallStrings {
    $row = $script:RowStrings
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:Counts
    $runs = Measure-Repeated 'PsIpc strings' { Invoke-PsIpcOneWay Strings $counts.StringsPsIpc }
    $null = New-Measurement -Row $row -Implementation 'PsIpc' -Unit 'msg/s' -Runs $runs -Count $counts.StringsPsIpc
    $null = New-Measurement -Row $row -Implementation 'PsIpc, sender connected to closed' -Unit 'msg/s' -Runs $runs `
        -Count $counts.StringsPsIpc -Value { param($r) ($r.messages + 1) / $r.senderSeconds }
    $runs = Measure-Repeated 'multiprocessing.Pipe send(str)' { Invoke-PythonAnchor strings $counts.StringsPython }
    $null = New-Measurement -Row $row -Implementation 'multiprocessing.Pipe' -Unit 'msg/s' -Runs $runs -Count $counts.StringsPython
    $runs = Measure-Repeated 'raw C# named pipe, BufferedStream' { Invoke-RawPipeAnchor strings $counts.StringsRaw }
    $null = New-Measurement -Row $row -Implementation 'raw C# named pipe' -Unit 'msg/s' -Runs $runs -Count $counts.StringsRaw
    Measure-JobAnchors -Row $row -Kind Strings
    Measure-PipelineFloor -Row $row -Kind Strings
}

function Measure-Objects {
    $row = $script:RowObjects
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:Counts
    $runs = Measure-Repeated 'PsIpc objects' { Invoke-PsIpcOneWay Objects $counts.ObjectsPsIpc }
    $null = New-Measurement -Row $row -Implementation 'PsIpc' -Unit 'msg/s' -Runs $runs -Count $counts.ObjectsPsIpc
    $null = New-Measurement -Row $row -Implementation 'PsIpc, sender connected to closed' -Unit 'msg/s' -Runs $runs `
        -Count $counts.ObjectsPsIpc -Value { param($r) ($r.messages + 1) / $r.senderSeconds }
    Measure-JobAnchors -Row $row -Kind Objects
    Measure-PipelineFloor -Row $row -Kind Objects
}

function Measure-Bytes {
    $row = $script:RowBytes
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:Counts
    $runs = Measure-Repeated 'PsIpc 1 MiB byte[]' { Invoke-PsIpcOneWay Bytes $counts.BytesPsIpc }
    $null = New-Measurement -Row $row -Implementation 'PsIpc' -Unit 'GB/s' -Runs $runs -Count $counts.BytesPsIpc
    $runs = Measure-Repeated 'multiprocessing.Pipe send_bytes' { Invoke-PythonAnchor bytes $counts.BytesPython }
    $null = New-Measurement -Row $row -Implementation 'multiprocessing.Pipe send_bytes' -Unit 'GB/s' -Runs $runs -Count $counts.BytesPython
    $runs = Measure-Repeated 'raw C# named pipe, reused buffer' { Invoke-RawPipeAnchor bytes $counts.BytesRaw }
    $null = New-Measurement -Row $row -Implementation 'raw C# named pipe' -Unit 'GB/s' -Runs $runs -Count $counts.BytesRaw
    $runs = Measure-Repeated 'raw C# named pipe, new byte[] each' { Invoke-RawPipeAnchor bytes-alloc $counts.BytesRaw }
    $null = New-Measurement -Row $row -Implementation 'raw C# named pipe, new byte[] per message' -Unit 'GB/s' -Runs $runs -Count $counts.BytesRaw
}

function Measure-RoundTrip {
    $row = $script:RowRoundTrip
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:Counts
    $runs = Measure-Repeated 'PsIpc round trip' { Invoke-PsIpcRoundTrip $counts.RoundTripPsIpc }
    $null = New-Measurement -Row $row -Implementation 'PsIpc' -Unit 'µs/trip' -Runs $runs -Count $counts.RoundTripPsIpc
    $runs = Measure-Repeated 'multiprocessing.Pipe round trip' { Invoke-PythonAnchor roundtrip $counts.RoundTripPython }
    $null = New-Measurement -Row $row -Implementation 'multiprocessing.Pipe' -Unit 'µs/trip' -Runs $runs -Count $counts.RoundTripPython
    $runs = Measure-Repeated 'raw C# named pipe round trip' { Invoke-RawPipeAnchor roundtrip $counts.RoundTripRaw }
    $null = New-Measurement -Row $row -Implementation 'raw C# named pipe' -Unit 'µs/trip' -Runs $runs -Count $counts.RoundTripRaw
    $runs = Measure-Repeated 'script loop floor' { Invoke-PipelineFloor Loop $counts.RoundTripFloor }
    $null = New-Measurement -Row $row -Implementation 'pipeline floor: script loop calling two no-op cmdlets' -Unit 'µs/trip' `
        -Runs $runs -Count $counts.RoundTripFloor -Value { param($r) $r.twoCmdletLoopSeconds / $r.messages * 1e6 }
}

function Measure-ReceiverMemory {
    $row = $script:RowMemory
    Write-Host $row -ForegroundColor Cyan
    foreach ($count in $script:Counts.MemorySmall, $script:Counts.MemoryLarge) {
        $label = $count.ToString('N0', $script:Invariant)
        $runs = Measure-Repeated "PsIpc receiver, $label strings" { Invoke-PsIpcOneWay Strings $count }
        $null = New-Measurement -Row $row -Implementation "PsIpc receiver, $label messages" -Unit 'MiB peak' -Runs $runs -Count $count
    }
}

function Measure-SocketRoundTrip {
    $row = $script:RowSocketRoundTrip
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:Counts
    $runs = Measure-Repeated 'PsIpc TCP round trip, script-block echo' { Invoke-PsIpcSocketEcho -Clients 1 -Count $counts.SocketRoundTripPsIpc -Rounds 0 }
    $null = New-Measurement -Row $row -Implementation 'PsIpc, script-block server' -Unit 'µs/trip' -Runs $runs -Count $counts.SocketRoundTripPsIpc
    $runs = Measure-Repeated 'PsIpc script-block echo, C# client' {
        $r = Invoke-SocketServerLoad -Server PsIpc -Clients 1 -Rounds $counts.SocketRoundTripServer -WarmUp 200
        if ($r.errors -gt 0) { throw "$($r.errors) error(s) among $($r.messages) round trips" }
        $r
    }
    $null = New-Measurement -Row $row -Implementation 'PsIpc, script-block server, C# client' -Unit 'µs/trip' -Runs $runs -Count $counts.SocketRoundTripServer
    $runs = Measure-Repeated 'asyncio echo round trip' { Invoke-AsyncioAnchor roundtrip $counts.SocketRoundTripPython }
    $null = New-Measurement -Row $row -Implementation 'Python asyncio echo server' -Unit 'µs/trip' -Runs $runs -Count $counts.SocketRoundTripPython
    $runs = Measure-Repeated 'raw C# echo round trip' {
        $r = Invoke-SocketServerLoad -Server Raw -Clients 1 -Rounds $counts.SocketRoundTripRaw -WarmUp 1000
        if ($r.errors -gt 0) { throw "$($r.errors) error(s) among $($r.messages) round trips" }
        $r
    }
    $null = New-Measurement -Row $row -Implementation 'raw C# echo server, C# client' -Unit 'µs/trip' -Runs $runs -Count $counts.SocketRoundTripRaw
}

function Measure-SocketClients {
    # The server is what is measured: the same C# load generator drives each echo server.
    $row = $script:RowSocketClients
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:Counts
    $clients = $counts.SocketClients
    foreach ($server in @(
            @{ Name = 'PsIpc'; Label = 'PsIpc script-block server'; Rounds = $counts.SocketRoundsServer; Implementation = 'PsIpc, script-block server' }
            @{ Name = 'Asyncio'; Label = 'asyncio echo server'; Rounds = $counts.SocketRoundsPython; Implementation = 'Python asyncio echo server' }
            @{ Name = 'Raw'; Label = 'raw C# echo server'; Rounds = $counts.SocketRoundsRaw; Implementation = 'raw C# echo server' })) {
        $runs = Measure-Repeated "$($server.Label), $clients C# clients" {
            $r = Invoke-SocketServerLoad -Server $server.Name -Clients $clients -Rounds $server.Rounds -WarmUp $counts.SocketWarmUp
            if ($r.errors -gt 0) { throw "$($r.errors) error(s) among $($r.messages) round trips" }
            $r
        }
        $null = New-Measurement -Row $row -Implementation $server.Implementation -Unit 'trips/s' -Runs $runs -Count ($clients * $server.Rounds)
    }
    # Context: what clients written in PowerShell get from the same server.
    $psipcTrips = $clients * $counts.SocketRoundsPsIpc
    $runs = Measure-Repeated "PsIpc server, $clients Connect-IpcSocket clients" {
        $r = Invoke-PsIpcSocketEcho -Clients $clients -Count 0 -Rounds $counts.SocketRoundsPsIpc
        if ($r.errors -gt 0) { throw "$($r.errors) error(s) among $($r.messages) round trips" }
        $r
    }
    $null = New-Measurement -Row $row -Implementation 'PsIpc, script-block server, clients: Connect-IpcSocket in one pwsh' -Unit 'trips/s' -Runs $runs -Count $psipcTrips
}

function Measure-SocketStrings {
    # Row 1's scheme and count over TCP and a Unix socket. The pipe is measured again here, its runs taking
    # turns with the socket runs (pipe, TCP, Unix, pipe, ...): the three see the same machine load, and the
    # targets compare figures of this row.
    $row = $script:RowSocketStrings
    Write-Host $row -ForegroundColor Cyan
    $count = $script:Counts.StringsPsIpc
    $runs = Measure-Repeated 'PsIpc strings: pipe, TCP, Unix socket in turn' {
        [pscustomobject]@{
            Pipe = Invoke-PsIpcOneWay Strings $count
            Tcp  = Invoke-PsIpcSocketOneWay Tcp Strings $count
            Unix = Invoke-PsIpcSocketOneWay Unix Strings $count
        }
    }
    $null = New-Measurement -Row $row -Implementation 'PsIpc over TCP' -Unit 'msg/s' -Runs $runs -Count $count -Value { param($r) $r.Tcp.messages / $r.Tcp.seconds }
    $null = New-Measurement -Row $row -Implementation 'PsIpc over Unix socket' -Unit 'msg/s' -Runs $runs -Count $count -Value { param($r) $r.Unix.messages / $r.Unix.seconds }
    $null = New-Measurement -Row $row -Implementation 'PsIpc over a pipe (runs taking turns with the above)' -Unit 'msg/s' -Runs $runs -Count $count `
        -Value { param($r) $r.Pipe.messages / $r.Pipe.seconds }
}

function Measure-SocketLoad {
    $row = $script:RowSocketLoad
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:Counts
    $label = '{0} clients x {1} round trips' -f $counts.LoadClients.ToString('N0', $script:Invariant), $counts.LoadRounds
    $runs = Measure-Repeated "PsIpc $label" -Repetitions $script:LoadRepetitions {
        Invoke-PsIpcSocketEcho -Clients $counts.LoadClients -Count 0 -Rounds $counts.LoadRounds
    }
    $null = New-Measurement -Row $row -Implementation "PsIpc, $label`: errors" -Unit 'errors' -Runs $runs -Count $counts.LoadClients
    $null = New-Measurement -Row $row -Implementation "PsIpc, $label`: round trips" -Unit 'trips/s' -Runs $runs `
        -Count ($counts.LoadClients * $counts.LoadRounds)
    $null = New-Measurement -Row $row -Implementation "PsIpc, $label`: connecting all clients" -Unit 's' -Runs $runs `
        -Count $counts.LoadClients -Value { param($r) $r.connectSeconds }
}

#endregion

#region Report

function Get-LoadAverage {
    if (Test-Path /proc/loadavg) { ((Get-Content /proc/loadavg -Raw) -split ' ')[0..2] -join ' ' } else { 'n/a' }
}

function Get-MachineFacts {
    $cpu = if (Test-Path /proc/cpuinfo) {
        (Select-String -Path /proc/cpuinfo -Pattern '^model name\s*:\s*(.+)$' | Select-Object -First 1).Matches.Groups[1].Value
    }
    $memory = if (Test-Path /proc/meminfo) {
        $kb = [double]((Select-String -Path /proc/meminfo -Pattern '^MemTotal:\s*(\d+)').Matches.Groups[1].Value)
        '{0:N1} GiB' -f ($kb / 1MB)
    }
    $nproc = if (Get-Command nproc -CommandType Application -ErrorAction Ignore) { (& nproc).Trim() } else { [Environment]::ProcessorCount }
    $python = if ($script:Python) { (& $script:Python --version 2>&1) -join ' ' } else { 'not found' }
    $manifestVersion = if ($script:ModuleManifest) { (Import-PowerShellDataFile $script:ModuleManifest).ModuleVersion } else { 'not built' }
    [ordered]@{
        'date (UTC)'   = [DateTime]::UtcNow.ToString('yyyy-MM-dd HH:mm', $script:Invariant)
        'run'          = if ($Quick) { "quick (-Quick, $script:Repetitions run per figure)" } else { "full ($script:Repetitions runs per figure, median)" }
        'OS'           = [System.Runtime.InteropServices.RuntimeInformation]::OSDescription
        'CPU'          = if ($cpu) { $cpu } else { 'unknown' }
        'nproc'        = $nproc
        'memory'       = if ($memory) { $memory } else { 'unknown' }
        'load average' = "$script:LoadAtStart at start, $(Get-LoadAverage) at end (1/5/15 min; other work on the machine skews figures)"
        'pwsh'         = $PSVersionTable.PSVersion.ToString()
        'dotnet'       = "SDK $((& $script:Dotnet --version).Trim()), runtime $([System.Runtime.InteropServices.RuntimeInformation]::FrameworkDescription)"
        'python'       = $python
        'PsIpc module' = "$manifestVersion ($([IO.Path]::GetRelativePath($script:RepoRoot, [IO.Path]::GetFullPath($ModulePath))))"
    }
}

function Get-Targets {
    $strings = Find-Measurement $script:RowStrings 'PsIpc'
    $objects = Find-Measurement $script:RowObjects 'PsIpc'
    $roundTrip = Find-Measurement $script:RowRoundTrip 'PsIpc'
    $small = $script:Measurements | Where-Object { $_.Row -eq $script:RowMemory } | Select-Object -First 1
    $large = $script:Measurements | Where-Object { $_.Row -eq $script:RowMemory } | Select-Object -Last 1

    New-Target 'small strings vs multiprocessing.Pipe' '>= 1.50x' @($strings, (Find-Measurement $script:RowStrings 'multiprocessing.Pipe')) {
        param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), ($psipc / $anchor -ge 1.5)
    }
    New-Target 'small strings vs Start-Job' '>= 15.00x' @($strings, (Find-Measurement $script:RowStrings 'Start-Job')) {
        param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), ($psipc / $anchor -ge 15)
    }
    New-Target 'objects vs Start-Job' '>= 5.00x' @($objects, (Find-Measurement $script:RowObjects 'Start-Job')) {
        param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), ($psipc / $anchor -ge 5)
    }
    Get-BytesTargets
    New-Target 'round trip vs multiprocessing.Pipe (time)' '<= 1.50x' @($roundTrip, (Find-Measurement $script:RowRoundTrip 'multiprocessing.Pipe')) {
        param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), ($psipc / $anchor -le 1.5)
    }
    $pipeStrings = Find-Measurement $script:RowSocketStrings 'PsIpc over a pipe (runs taking turns with the above)'
    New-Target '100 clients: PsIpc throughput vs asyncio echo server' '>= 2.00x' @((Find-Measurement $script:RowSocketClients 'PsIpc, script-block server'), (Find-Measurement $script:RowSocketClients 'Python asyncio echo server')) {
        param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), ($psipc / $anchor -ge 2)
    }
    New-Target 'small strings over TCP vs over a pipe' '>= 0.80x' @((Find-Measurement $script:RowSocketStrings 'PsIpc over TCP'), $pipeStrings) {
        param($socket, $pipe) (Format-Ratio ($socket / $pipe)), ($socket / $pipe -ge 0.8)
    }
    New-Target 'small strings over a Unix socket vs over a pipe' '>= 0.80x' @((Find-Measurement $script:RowSocketStrings 'PsIpc over Unix socket'), $pipeStrings) {
        param($socket, $pipe) (Format-Ratio ($socket / $pipe)), ($socket / $pipe -ge 0.8)
    }
    $loadErrors = $script:Measurements | Where-Object { $_.Row -eq $script:RowSocketLoad -and $_.Unit -eq 'errors' } | Select-Object -First 1
    $loadName = '{0} concurrent clients: errors (worst run)' -f $script:Counts.LoadClients.ToString('N0', $script:Invariant)
    if ($loadErrors -and $loadErrors.Status -eq 'OK') {
        $worst = ($loadErrors.Values | Measure-Object -Maximum).Maximum
        [pscustomobject]@{ Name = $loadName; Requirement = '0'; Measured = $worst.ToString('N0', $script:Invariant); Result = $worst -eq 0 ? 'PASS' : 'MISS' }
    }
    else {
        New-Target $loadName '0' @($loadErrors) { param($e) $e, $false }
    }
    New-Target 'receiver memory flat: 1M vs 100k messages' '<= 1.20x or <= +32 MiB' @($small, $large) {
        param($smallPeak, $largePeak)
        $measured = '{0} ({1} MiB)' -f (Format-Ratio ($largePeak / $smallPeak)), ($largePeak - $smallPeak).ToString('+0.0;-0.0', $script:Invariant)
        $measured, ($largePeak -le 1.2 * $smallPeak -or $largePeak - $smallPeak -le 32)
    }
}

function Get-BytesTargets {
    # Row 3's targets (also run alone by -Only Bulk).
    $bytes = Find-Measurement $script:RowBytes 'PsIpc'
    New-Target '1 MiB bytes vs multiprocessing.Pipe send_bytes' '>= 2.00x' @($bytes, (Find-Measurement $script:RowBytes 'multiprocessing.Pipe send_bytes')) {
        param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), ($psipc / $anchor -ge 2)
    }
    New-Target '1 MiB bytes vs raw C# named pipe' '>= 0.40x' @($bytes, (Find-Measurement $script:RowBytes 'raw C# named pipe')) {
        param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), ($psipc / $anchor -ge 0.4)
    }
}

function Get-ContextRatios {
    # Not targets: where PsIpc sits between the floor and the anchors.
    $strings = Find-Measurement $script:RowStrings 'PsIpc'
    $pairs = @(
        , @('small strings vs Start-ThreadJob', $strings, (Find-Measurement $script:RowStrings 'Start-ThreadJob'))
        , @('small strings vs raw C# named pipe', $strings, (Find-Measurement $script:RowStrings 'raw C# named pipe'))
        , @('small strings vs the no-op cmdlet floor', $strings, (Find-Measurement $script:RowStrings 'pipeline floor: $data | no-op binary cmdlet'))
        , @('objects vs Start-ThreadJob', (Find-Measurement $script:RowObjects 'PsIpc'), (Find-Measurement $script:RowObjects 'Start-ThreadJob'))
        , @('round trip vs raw C# named pipe (time)', (Find-Measurement $script:RowRoundTrip 'PsIpc'), (Find-Measurement $script:RowRoundTrip 'raw C# named pipe'))
        , @('round trip vs the two-cmdlet script loop floor (time)', (Find-Measurement $script:RowRoundTrip 'PsIpc'), (Find-Measurement $script:RowRoundTrip 'pipeline floor: script loop calling two no-op cmdlets'))
        , @('TCP round trip vs asyncio echo (time)', (Find-Measurement $script:RowSocketRoundTrip 'PsIpc, script-block server'), (Find-Measurement $script:RowSocketRoundTrip 'Python asyncio echo server'))
        , @('TCP round trip, script-block server with a C# client, vs raw C# echo (time)', (Find-Measurement $script:RowSocketRoundTrip 'PsIpc, script-block server, C# client'), (Find-Measurement $script:RowSocketRoundTrip 'raw C# echo server, C# client'))
        , @('100 clients: PsIpc throughput vs raw C# echo server', (Find-Measurement $script:RowSocketClients 'PsIpc, script-block server'), (Find-Measurement $script:RowSocketClients 'raw C# echo server'))
        , @('small strings over TCP vs row 1 (pipe)', (Find-Measurement $script:RowSocketStrings 'PsIpc over TCP'), $strings)
        , @('small strings over a Unix socket vs row 1 (pipe)', (Find-Measurement $script:RowSocketStrings 'PsIpc over Unix socket'), $strings)
        , @('TCP round trip vs raw C# named pipe (time)', (Find-Measurement $script:RowSocketRoundTrip 'PsIpc, script-block server'), (Find-Measurement $script:RowRoundTrip 'raw C# named pipe'))
        , @('TCP round trip (script-block server) vs PsIpc pipe round trip (time)', (Find-Measurement $script:RowSocketRoundTrip 'PsIpc, script-block server'), (Find-Measurement $script:RowRoundTrip 'PsIpc'))
    )
    foreach ($pair in $pairs) {
        $name, $psipc, $anchor = $pair
        New-Target $name 'context' @($psipc, $anchor) { param($a, $b) (Format-Ratio ($a / $b)), $true } |
            ForEach-Object { if ($_.Result -eq 'PASS') { $_.Result = 'info' }; $_ }
    }
}

function Get-MethodNotes {
    # Literal markdown; <<Name>> is replaced by the count of that name (or by the values below).
    $values = @{ Repetitions = $script:Repetitions; PythonVersion = $script:PythonVersion; LoadRepetitions = $script:LoadRepetitions }
    foreach ($key in $script:Counts.Keys) {
        $values[$key] = ([int]$script:Counts[$key]).ToString('N0', $script:Invariant)
    }
    $text = @'
Every figure is the median of <<Repetitions>> run(s); every run starts fresh processes. Rates are
per message (counts differ between implementations so that each run lasts long enough to measure and
short enough to repeat); GB is 10^9 bytes.

**One-way rows (1-3) are timed by the receiver, from the moment it has taken the first message to the
moment it has taken the last** (so N-1 messages are timed). Process start-up, module import, data
preparation and connecting are outside every one-way figure, for every implementation. PowerShell
receivers pipe what they receive into the same counting sink (`Measure-BenchStream` in
bench/workers/BenchWorker.ps1: a plain function with a process block that starts a stopwatch on the
first item); its own cost is the "pipeline floor: counting sink" line.

- **PsIpc** (rows 1-3, 5): two pwsh processes, both `Import-Module` the staged module. The receiver
  runs `New-IpcPipe -Name $name`, then `Receive-IpcMessage $p -Count $n -TimeoutSeconds 120 | Measure-BenchStream`.
  The sender builds its array first, then `New-IpcPipe -Name $name -Connect -TimeoutSeconds 30`,
  `$data | Send-IpcMessage $p` (each item one message, default -Format) and `Close-IpcChannel $p`.
  The 1 MiB row pipes an array of byte[] references (the pipeline unrolls only the outer array, so
  each byte[] is one message). The "sender connected to closed" line is the sender's own clock, from
  connected to Close-IpcChannel returned, over all N messages. Counts: strings <<StringsPsIpc>>,
  objects <<ObjectsPsIpc>>, 1 MiB messages <<BytesPsIpc>>.
- **multiprocessing.Pipe** (bench/anchors/mp_pipe.py, <<PythonVersion>>): the parent process receives,
  a `multiprocessing.Process` child sends: `send(str)` of 16-character strings (<<StringsPython>>) and
  `send_bytes` of one 1 MiB bytes object (<<BytesPython>>), taken with `recv()` / `recv_bytes()`.
- **raw C# named pipe** (bench/RawPipe, net10.0, Release): NamedPipeServerStream (receiver) and
  NamedPipeClientStream (sender) in two processes, 4-byte little-endian length prefix. Strings
  (<<StringsRaw>>): UTF-8 encoded into a BufferedStream (64 KiB) with one flush at the end, decoded back
  into strings by the receiver. 1 MiB (<<BytesRaw>>): written through the same BufferedStream; the
  receiver reads every message into one reused buffer (the pipe's ceiling and the anchor of the 40%
  target) and, in a second line, into a new byte[] per message, as a receiver that hands messages on must.
- **Start-Job / Start-ThreadJob** (rows 1-2): the job builds its array first, then outputs it; the
  parent pipes `Receive-Job $job -Wait -AutoRemoveJob` into the counting sink. Counts: Start-Job strings
  <<StringsJob>>, objects <<ObjectsJob>>; Start-ThreadJob strings <<StringsThreadJob>>, objects
  <<ObjectsThreadJob>>. The main line is first item to last, like every other one-way figure; the "wall
  clock incl. job start" line runs from the Start-*Job call to the end of Receive-Job, so it includes the
  job's start-up and the job building its data. Nothing is subtracted from either.
- **pipeline floor** (rows 1-2; row 4 below): one pwsh process, no IPC: a prepared `$data` (<<StringsFloor>> strings,
  <<ObjectsFloor>> objects) piped into a compiled no-op cmdlet with a ValueFromPipeline parameter (the
  ceiling of any binary cmdlet fed by the pipeline, such as `$data | Send-IpcMessage $p`), into
  `ForEach-Object { }`, into the counting sink and into `Out-Null`, each timed over one pass after
  untimed warm-up passes lasting at least half a second.

Row 4, **round trip**, is timed by the side that asks, over N round trips after a warm-up (PsIpc: at least
200 trips and at least 3 s, so that the tiered JIT of both pwsh processes has settled: after 200 trips alone the
loop still ran mostly tier-0 code, 400-440 us a trip against 90-96 us after 20,000; the others 1000). PsIpc (<<RoundTripPsIpc>>): an echo pwsh serves the pipe with
`Receive-IpcMessage $p -Envelope | ForEach-Object { Send-IpcMessage $_.Sender $_.Body; $echoed++ }`; the measuring
pwsh connects and loops `Send-IpcMessage $p 'ping'; $reply = Receive-IpcMessage $p -Count 1` in a
script. multiprocessing.Pipe (<<RoundTripPython>>): `send('ping')` + `recv()` against a child that
echoes. Raw C# (<<RoundTripRaw>>): one 8-byte frame written and flushed, the echo read back.
The pipeline floor line (<<RoundTripFloor>>) is the same script loop calling a compiled no-op cmdlet twice
per iteration (`Invoke-BenchNoOp 'ping'; $reply = Invoke-BenchNoOp -Count 1`) in one process: what
any cmdlet-based request/reply loop costs before a byte moves.

Row 5, **receiver memory**: the PsIpc string row run with <<MemorySmall>> and with <<MemoryLarge>>
messages; the receiver reports its peak working set (Process.PeakWorkingSet64, VmHWM on Linux) after
taking them all, so the figure includes pwsh itself and the module. The receiver keeps nothing (the
sink only counts), so a flat figure means the transport's queues are bounded.

Rows 6-9, **sockets**. Each socket server runs in its own process (PsIpc: a pwsh), started on port 0 (or
`-Path`), and publishes where it listens in a file the connecting process waits for (bench/workers/BenchSocket.ps1).

- Row 6, **TCP round trip**, timed by the client after untimed round trips (at least 200 and 3 s, as row 4) (<<SocketRoundTripPsIpc>>):
  the server pwsh runs `Start-IpcSocketServer -Port 0 -ScriptBlock { param($message) $message }` (default
  -ThrottleLimit); the client pwsh runs `$c = Connect-IpcSocket -Port $port` and the loop of row 4,
  `Send-IpcMessage $c 'ping'; $reply = Receive-IpcMessage $c -Count 1`. The "C# client" line is the same
  server driven by the load generator of row 7 with one connection (<<SocketRoundTripServer>> round trips after
  200 untimed): what the server adds, without the cost of a PowerShell client loop. Anchors:
  bench/anchors/asyncio_echo.py (<<PythonVersion>>, <<SocketRoundTripPython>> round trips after 1000 untimed): a child
  process runs an `asyncio.start_server` echo server, the parent one `asyncio.open_connection` client;
  each message is a 4-byte little-endian length and b"ping". Raw C# (bench/RawSocket, net10.0, Release,
  <<SocketRoundTripRaw>> round trips after 1000 untimed): its echo server process and its client process
  (the row 7 load generator with one connection), same wire. The PsIpc and raw C# pipe figures of row 4
  are the other anchors.
- Row 7, **100 concurrent clients**: the server is what is measured, so every server gets the same
  clients: bench/RawSocket `clients`, one C# process (net10.0, Release) that opens <<SocketClients>> TCP
  connections (TCP_NODELAY), then runs one async loop per connection, all at once on the runtime's
  thread pool: send a request, await its reply, check it, repeat. Each client first makes
  <<SocketWarmUp>> untimed round trips (the PsIpc server opens its handler runspaces and compiles its
  handler then), then the timed ones; timed from the first timed request to the last reply, connecting
  outside. Against the PsIpc server it speaks docs/protocol.md (a Hello each way, then a Text frame
  "ping" per request; <<SocketRoundsServer>> round trips per client), against the others the 4-byte
  length + b"ping" of row 6. Servers, each in its own process: PsIpc `Start-IpcSocketServer -Port 0
  -ScriptBlock { param($message) $message }` in a pwsh (default -ThrottleLimit); `asyncio_echo.py server`
  (<<SocketRoundsPython>> round trips per client); the raw C# echo server of row 6 (<<SocketRoundsRaw>> per
  client). Every reply is checked; any error fails the run. Figures are round trips per second over all
  clients. The last line (context, not a target) is the PsIpc server driven by PowerShell clients: one
  pwsh opens <<SocketClients>> `Connect-IpcSocket` connections from one runspace, then runs
  <<SocketRoundsPsIpc>> rounds; in each, every client sends one request, then every client's reply is read
  and checked. That client loop, not the server, limits this line.
- Row 8, **one way over sockets**: the scheme and count of row 1 (<<StringsPsIpc>> 16-byte strings) with
  `Start-IpcSocketServer -Port 0` (or `-Path $TMPDIR/<name>.sock`) and no script block in the receiver,
  `Receive-IpcMessage $srv -Count $n | Measure-BenchStream`, and `Connect-IpcSocket` + `$data | Send-IpcMessage $c`
  + `Close-IpcChannel $c` in the sender. The pipe of row 1 is measured again in this row, its runs
  taking turns with the socket runs (pipe, TCP, Unix socket, pipe, ...) so that all three meet the same
  machine load; the targets compare with that pipe line.
- Row 9, **concurrent clients served**: the echo server of row 6 (default -MaxConnections 1000); one client
  pwsh connects <<LoadClients>> clients from one runspace, all connected at once, then runs <<LoadRounds>>
  rounds as in row 7. Errors are the client's (a failed connect, send or close, a reply that is missing
  after 30 s or wrong) plus the server's (HandlerErrors, ConnectionErrors, ConnectionsRefused, and clients
  it still counts 10 s after the client pwsh closed them all); the target takes the worst run. Repeated
  <<LoadRepetitions>> time(s). The round-trip rate and the time to connect all clients are given for context.
'@
    foreach ($key in $values.Keys) {
        $text = $text.Replace("<<$key>>", [string]$values[$key])
    }
    $text
}

function Get-CaveatNotes {
    @'
- `$data | Out-Null` is compiled by pwsh into discarding the output: no item passes through a cmdlet,
  so that line is not a ceiling for anything; the no-op cmdlet line is the real floor of a binary cmdlet.
- Start-ThreadJob hands the parent the job's live objects (no serialization); Start-Job and PsIpc
  serialize, so objects arrive as Deserialized copies.
- The raw C# anchor is a ceiling, not a like-for-like program: no handshake, no message types, no
  encoding of objects, and the string sender flushes once at the end because it knows all its data.
- Both processes of every two-process figure (and their GC threads) share the machine's cores (see
  nproc), and anything else running at the same time shows in the spread of the runs and in the load
  average above; compare figures from one run, and prefer the median over any single run.
'@
}

function Write-ConsoleReport {
    param($Facts, $Targets)
    Write-Host ''
    Write-Host 'Machine' -ForegroundColor Cyan
    foreach ($fact in $Facts.GetEnumerator()) {
        Write-Host ('  {0,-14} {1}' -f $fact.Key, $fact.Value)
    }
    Write-Host ''
    Write-Host "Results (median of $script:Repetitions run(s))" -ForegroundColor Cyan
    ConvertTo-TextTable @(Get-ResultRows) | Write-Host
    Write-Host ''
    Write-Host 'Targets' -ForegroundColor Cyan
    ConvertTo-TextTable @($Targets | Select-Object Name, Requirement, Measured, Result) | Write-Host
    Write-Host ''
}

function Export-MarkdownReport {
    param($Facts, $Targets, [string] $Path)
    $lines = [System.Collections.Generic.List[string]]::new()
    $lines.Add('# PsIpc benchmarks')
    $lines.Add('')
    $lines.Add('Generated by `bench/Invoke-Bench.ps1` (run it with `./build.ps1 Bench`); do not edit by hand.')
    $lines.Add('Every figure comes from the same run on the same machine, so the ratios are what matters;')
    $lines.Add('the absolute numbers only describe this machine.')
    $lines.Add('')
    $lines.Add('## Machine')
    $lines.Add('')
    $lines.AddRange([string[]](ConvertTo-MarkdownTable @($Facts.GetEnumerator() | ForEach-Object {
                    [pscustomobject]@{ Fact = $_.Key; Value = $_.Value } })))
    $lines.Add('')
    $lines.Add('## Targets (issue 3, item 7; sockets: issue 4, item 8; shared memory: issue 5, item 7; queues: issue 10, item 6)')
    $lines.Add('')
    $lines.AddRange([string[]](ConvertTo-MarkdownTable @($Targets | Select-Object Name, Requirement, Measured, Result)))
    $lines.Add('')
    $lines.Add("## Results (median of $script:Repetitions run(s))")
    $lines.Add('')
    $lines.AddRange([string[]](ConvertTo-MarkdownTable @(Get-ResultRows)))
    $lines.Add('')
    $lines.Add('## How each row is measured')
    $lines.Add('')
    if (-not $Only) {
        $lines.AddRange([string[]]((Get-MethodNotes) -split '\r?\n'))
        $lines.Add('')
        $lines.AddRange([string[]]((Get-SharedMemoryMethodNotes) -split '\r?\n'))
        $lines.Add('')
    }
    # A partial run (-Only) describes only the rows it ran (the queue notes need the broker's facts).
    if (-not $Only -or $Only -contains 'Queue') {
        $lines.AddRange([string[]]((Get-QueueMethodNotes) -split '\r?\n'))
        $lines.Add('')
    }
    if (-not $Only -or $Only -contains 'Request') {
        $lines.AddRange([string[]]((Get-RequestMethodNotes) -split '\r?\n'))
        $lines.Add('')
    }
    if (-not $Only -or $Only -contains 'Bulk') {
        $lines.AddRange([string[]]((Get-BulkMethodNotes) -split '\r?\n'))
        $lines.Add('')
    }
    if (-not $Only -or $Only -contains 'Scale') {
        $lines.AddRange([string[]]((Get-ScaleMethodNotes) -split '\r?\n'))
        $lines.Add('')
    }
    $lines.Add('## Caveats')
    $lines.Add('')
    $lines.AddRange([string[]]((Get-CaveatNotes) -split '\r?\n'))
    $directory = Split-Path -Parent $Path
    if (-not (Test-Path $directory)) {
        $null = New-Item -ItemType Directory -Path $directory
    }
    [IO.File]::WriteAllText([IO.Path]::GetFullPath($Path), ($lines -join "`n") + "`n", [Text.UTF8Encoding]::new($false))
}

#endregion

$script:ModuleManifest = Resolve-ModuleManifest $ModulePath
$script:Dotnet = Get-DotnetPath
$script:Python = (Get-Command python3, python -CommandType Application -ErrorAction Ignore | Select-Object -First 1).Source
$script:PythonVersion = if ($script:Python) { (& $script:Python --version 2>&1) -join ' ' } else { 'python not found' }
$script:LoadAtStart = Get-LoadAverage
$totalClock = [System.Diagnostics.Stopwatch]::StartNew()

Write-Host "PsIpc bench ($(if ($Quick) { 'quick' } else { 'full' })), module: $(if ($script:ModuleManifest) { $script:ModuleManifest } else { "MISSING at $ModulePath" })" -ForegroundColor Cyan
if (-not $Only) {
    Write-Host 'Building the raw C# anchor' -ForegroundColor Cyan
    $script:RawPipeBuildError = Build-RawPipeAnchor
    $script:ShmAnchorBuildError = Build-ShmAnchor
    $script:RawSocketBuildError = Build-RawSocketAnchor
    $script:RawBulkBuildError = Build-RawBulkAnchor
}
else {
    if ($Only -contains 'Bulk') {
        Write-Host 'Building the raw C# anchors of the bulk rows' -ForegroundColor Cyan
        $script:RawPipeBuildError = Build-RawPipeAnchor
        $script:ShmAnchorBuildError = Build-ShmAnchor
        $script:RawBulkBuildError = Build-RawBulkAnchor
    }
    if ($Only -contains 'Scale') {
        Write-Host 'Building the load generator' -ForegroundColor Cyan
        $script:RawSocketBuildError = Build-RawSocketAnchor
    }
    if (-not $PSBoundParameters.ContainsKey('OutputPath')) {
        $OutputPath = Join-Path $script:RepoRoot "output/bench-$(($Only | Sort-Object -Unique) -join '-').md"
    }
}

if (-not $Only) {
    Measure-SmallStrings
    Measure-Objects
    Measure-Bytes
    Measure-RoundTrip
    Measure-ReceiverMemory
    Measure-SocketRoundTrip
    Measure-SocketClients
    Measure-SocketStrings
    Measure-SocketLoad
    Measure-ShmQueueStrings
    Measure-ShmHandoff
    Measure-ShmRing
    Measure-Bulk
}
elseif ($Only -contains 'Bulk') {
    Measure-Bytes
    Measure-ShmHandoff
    Measure-Bulk
}
if (-not $Only -or $Only -contains 'Queue') { Measure-QueueRows }
if (-not $Only -or $Only -contains 'Request') { Measure-Request }
if (-not $Only -or $Only -contains 'Scale') { Measure-Scale }

$facts = Get-MachineFacts
$targets = @(if (-not $Only) { @(Get-Targets) + @(Get-SharedMemoryTargets) + @(Get-BulkTargets) + @(Get-ContextRatios) }) +
    @(if ($Only -contains 'Bulk') {
            @(Get-BytesTargets) + @(Get-ShmHandoffTargets) + @(Get-BulkTargets)
        }) +
    @(if (-not $Only -or $Only -contains 'Queue') { Get-QueueTargets }) +
    @(if (-not $Only -or $Only -contains 'Request') { Get-RequestTargets }) +
    @(if (-not $Only -or $Only -contains 'Scale') { Get-ScaleTargets })
Write-ConsoleReport -Facts $facts -Targets $targets
Export-MarkdownReport -Facts $facts -Targets $targets -Path $OutputPath
Write-Host ("Wrote {0} ({1:N0} s in all)" -f [IO.Path]::GetFullPath($OutputPath), $totalClock.Elapsed.TotalSeconds)

$errors = @($script:Measurements | Where-Object Status -EQ 'ERROR')
if ($errors.Count -gt 0) {
    Write-Host "$($errors.Count) figure(s) ended in ERROR." -ForegroundColor Red
    exit 1
}
exit 0
