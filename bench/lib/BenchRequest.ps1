# The request/reply rows of bench/Invoke-Bench.ps1 (issue 12, items 1, 2 and 5): one call per round trip
# (Invoke-IpcRequest, IpcChannel.Request) against a script-block server and a compiled echo, and the cost of
# the cmdlet against a compiled no-op cmdlet's floor. Dot-sourced by the harness, which calls Measure-Request
# and Get-RequestTargets, Get-RequestMethodNotes. The anchor is row 4's multiprocessing.Pipe round trip (same run).
# Uses the harness's helpers (Measure-Repeated, New-Measurement, Start-BenchPwsh, ...) and $script:ModuleManifest.

$script:RequestCounts = if ($Quick) {
    @{ Cmdlet = 1000; Method = 5000 }
}
else {
    @{ Cmdlet = 5000; Method = 20000 }
}

$script:RowRequest = '15. request/reply in one call (Invoke-IpcRequest, IpcChannel.Request)'

function Invoke-PsIpcRequestRun {
    # A server pwsh (script-block handler or compiled echo) serves one pipe client; the client pwsh times
    # the round trips. The client's result, checked against the server's count.
    param(
        [ValidateSet('ScriptBlock', 'Compiled')] [string] $Server,
        [ValidateSet('Cmdlet', 'Method')] [string] $Mode,
        [int] $Count
    )
    Assert-PsIpcModule
    $name = New-BenchPipeName
    $serverHandle = Start-BenchPwsh -Label "PsIpc request server ($Server)" -Worker PsIpcRequestServer -Parameters ([ordered]@{
            ModulePath = $script:ModuleManifest; Name = $name; Kind = $Server
        })
    try {
        $client = Start-BenchPwsh -Label "PsIpc request client ($Mode)" -Worker PsIpcRequestClient -Parameters ([ordered]@{
                ModulePath = $script:ModuleManifest; Name = $name; Mode = $Mode; Count = $Count
            })
    }
    catch {
        Stop-BenchProcess $serverHandle
        throw
    }
    $trips, $served = Wait-BenchProcess -Handle $client, $serverHandle -TimeoutSeconds 300
    if ($served.messages -lt $trips.messages -or $served.handlerErrors -gt 0 -or $trips.lateRepliesDropped -gt 0) {
        throw "the server answered $($served.messages) requests ($($served.handlerErrors) handler errors) for $($trips.messages) timed round trips; $($trips.lateRepliesDropped) late replies"
    }
    $trips
}

function Measure-Request {
    $row = $script:RowRequest
    Write-Host $row -ForegroundColor Cyan
    $counts = $script:RequestCounts
    $runs = Measure-Repeated 'Invoke-IpcRequest loop, script-block server' { Invoke-PsIpcRequestRun -Server ScriptBlock -Mode Cmdlet -Count $counts.Cmdlet }
    $null = New-Measurement -Row $row -Implementation 'Invoke-IpcRequest, script-block server (pipe)' -Unit 'µs/trip' -Runs $runs -Count $counts.Cmdlet
    $runs = Measure-Repeated 'Invoke-IpcRequest loop, compiled echo' { Invoke-PsIpcRequestRun -Server Compiled -Mode Cmdlet -Count $counts.Cmdlet }
    $null = New-Measurement -Row $row -Implementation 'Invoke-IpcRequest, compiled echo (pipe)' -Unit 'µs/trip' -Runs $runs -Count $counts.Cmdlet
    $null = New-Measurement -Row $row -Implementation 'floor: the same script loop calling a compiled no-op cmdlet' -Unit 'µs/trip' -Runs $runs `
        -Count $counts.Cmdlet -Value { param($r) $r.floorSeconds / $r.messages * 1e6 }
    $null = New-Measurement -Row $row -Implementation 'the same trip from C#, in turns with the two loops above' -Unit 'µs/trip' -Runs $runs `
        -Count $counts.Cmdlet -Value { param($r) $r.csharpSeconds / $r.messages * 1e6 }
    $null = New-Measurement -Row $row -Implementation 'per-call cost: (Invoke-IpcRequest trip - C# trip) / floor, each run' -Unit 'x' -Runs $runs `
        -Count $counts.Cmdlet -Value { param($r) ($r.seconds - $r.csharpSeconds) / $r.floorSeconds }
    $runs = Measure-Repeated 'IpcChannel.Request from C#, compiled echo' { Invoke-PsIpcRequestRun -Server Compiled -Mode Method -Count $counts.Method }
    $null = New-Measurement -Row $row -Implementation 'IpcChannel.Request from C#, compiled echo (pipe)' -Unit 'µs/trip' -Runs $runs -Count $counts.Method
}

function Get-RequestTargets {
    $anchor = Find-Measurement $script:RowRoundTrip 'multiprocessing.Pipe'
    $scriptServer = Find-Measurement $script:RowRequest 'Invoke-IpcRequest, script-block server (pipe)'
    $compiledServer = Find-Measurement $script:RowRequest 'Invoke-IpcRequest, compiled echo (pipe)'
    $method = Find-Measurement $script:RowRequest 'IpcChannel.Request from C#, compiled echo (pipe)'
    $perCall = Find-Measurement $script:RowRequest 'per-call cost: (Invoke-IpcRequest trip - C# trip) / floor, each run'
    New-Target 'Invoke-IpcRequest round trip, script-block server, vs multiprocessing.Pipe (time)' '<= 1.50x' @($scriptServer, $anchor) {
        param($psipc, $python) (Format-Ratio ($psipc / $python)), ($psipc / $python -le 1.5)
    }
    New-Target 'Invoke-IpcRequest round trip, compiled echo, vs multiprocessing.Pipe (time)' '<= 1.20x' @($compiledServer, $anchor) {
        param($psipc, $python) (Format-Ratio ($psipc / $python)), ($psipc / $python -le 1.2)
    }
    New-Target 'IpcChannel.Request from C#, compiled echo, vs multiprocessing.Pipe (time)' '<= 1.00x' @($method, $anchor) {
        param($psipc, $python) (Format-Ratio ($psipc / $python)), ($psipc / $python -le 1.0)
    }
    # What the cmdlet adds to a round trip (Invoke-IpcRequest minus the same trip from C#) against what any
    # compiled cmdlet costs in the same loop: all three timed in turns in the same processes, the median of the runs' ratios.
    New-Target 'Invoke-IpcRequest per-call cost (minus the C# trip) vs the no-op cmdlet floor' '<= 2.00x' @($perCall) {
        param($ratio) (Format-Ratio $ratio), ($ratio -le 2.0)
    }
}

function Get-RequestMethodNotes {
    $values = @{ Cmdlet = $script:RequestCounts.Cmdlet.ToString('N0', $script:Invariant); Method = $script:RequestCounts.Method.ToString('N0', $script:Invariant) }
    $text = @'
Row 15, **request/reply in one call**, timed by the asking pwsh over N round trips after untimed ones (at least
500 and at least 3 s, the same for the floor loop: the runtime's tiered JIT recompiles the hot methods of
PowerShell and the module during a loop's first seconds, which a loop of a few thousand trips would otherwise
mostly time), each run in two fresh processes over a named pipe (bench/workers/PsIpcRequestServer.ps1, PsIpcRequestClient.ps1).
Servers: the script-block server `New-IpcPipe -MaxClients 1 -ScriptBlock { param($message) $message }`, and a
compiled echo: a C# loop (Add-Type) over the channel contract, `Receive` then `Reply(request, ...)`, no
PowerShell per message. Clients: a script loop `$reply = Invoke-IpcRequest $pipe 'ping'` (<<Cmdlet>> round
trips), and a C# loop calling `$pipe.Request(...)` (<<Method>>, its own processes). The floor line is the client
process's same script loop calling a compiled no-op cmdlet with the same arguments (`$reply =
Invoke-BenchNoOpRequest $pipe 'ping'`). The cmdlet loop, the floor loop and the same trips from the C# loop take
turns in ten blocks in the same client process (after warming up all three), and the per-call line is each run's
(cmdlet trip - C# trip) / floor: a difference of two trips is smaller than how much two process pairs' trips
differ from run to run (where the scheduler placed the two spinning threads: the same pair pinned to one core
took 59 instead of 30 us a trip; another process's burst), so its parts are timed in the same minutes. The anchor of the other targets is row 4's multiprocessing.Pipe round
trip (Python code echoes). Every reply is checked, and a run fails when the server answered fewer requests
than were timed or a reply came late.
'@
    foreach ($key in $values.Keys) { $text = $text.Replace("<<$key>>", [string]$values[$key]) }
    $text
}
