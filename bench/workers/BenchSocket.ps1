# Shared by the socket workers of bench/Invoke-Bench.ps1 (dot-source it after BenchWorker.ps1).
# The serving worker starts its server (TCP port 0 or a Unix socket path), then publishes where it
# listens in a ready file the harness named; the connecting workers wait for that file.

function Publish-BenchEndpoint {
    # Writes 'tcp:<port>' or 'unix:<path>' to $ReadyFile (through a rename, so a reader never sees
    # half a line).
    param([Parameter(Mandatory)] [string] $ReadyFile, [Parameter(Mandatory)] $Server)
    $endpoint = if ($Server.Kind -eq 'Unix') { "unix:$($Server.Path)" } else { "tcp:$($Server.Port)" }
    $temporary = "$ReadyFile.$PID.tmp"
    [IO.File]::WriteAllText($temporary, $endpoint)
    [IO.File]::Move($temporary, $ReadyFile, $true)
}

function Wait-BenchEndpoint {
    # Waits for the ready file and returns the Connect-IpcSocket parameters it names.
    # .NET calls, not Test-Path and Start-Sleep: those cmdlets auto-load Microsoft.PowerShell.Management and
    # .Utility (module discovery reads manifests from disk), and the runtime recompiles that start-up code at
    # tier 1 in the background a moment later, on the cores the timed sends of row 8 use. The pipe sender
    # loads no module before its sends; with the cmdlets here, the socket rows paid about 0.3-0.5 us of CPU
    # per message more than the pipe in the same minutes (docs/benchmarks.md, row 8).
    param([Parameter(Mandatory)] [string] $ReadyFile, [double] $TimeoutSeconds = 60)
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while (-not [IO.File]::Exists($ReadyFile)) {
        if ([DateTime]::UtcNow -gt $deadline) {
            throw "the server did not publish its endpoint in $ReadyFile within $TimeoutSeconds s"
        }
        [Threading.Thread]::Sleep(20)
    }
    $kind, $value = ([IO.File]::ReadAllText($ReadyFile)).Split(':', 2)
    if ($kind -eq 'unix') { @{ Path = $value } } else { @{ Port = [int]$value } }
}

function Get-BenchServerCounters {
    param([Parameter(Mandatory)] $Server)
    [ordered]@{
        connectionsAccepted = $Server.ConnectionsAccepted
        connectionsRefused  = $Server.ConnectionsRefused
        connectionErrors    = $Server.ConnectionErrors
        handlerErrors       = $Server.HandlerErrors
        messagesReceived    = $Server.MessagesReceived
        messagesSent        = $Server.MessagesSent
    }
}

function Complete-BenchClients {
    # The connecting worker says it is done (all its clients closed) with a second file.
    param([Parameter(Mandatory)] [string] $ReadyFile)
    [IO.File]::WriteAllText("$ReadyFile.done", '')
}

function Wait-BenchClientsDone {
    # The serving worker waits for the clients' done file, then (at most $GraceSeconds) for the
    # server to see every client gone. Returns how many are still connected.
    param(
        [Parameter(Mandatory)] [string] $ReadyFile,
        [Parameter(Mandatory)] $Server,
        [double] $TimeoutSeconds = 180,
        [double] $GraceSeconds = 10
    )
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while (-not (Test-Path -LiteralPath "$ReadyFile.done")) {
        if ([DateTime]::UtcNow -gt $deadline) {
            throw "the clients did not finish within $TimeoutSeconds s ($($Server.ConnectionsAccepted) accepted, $($Server.ClientCount) connected)"
        }
        Start-Sleep -Milliseconds 20
    }
    $deadline = [DateTime]::UtcNow.AddSeconds($GraceSeconds)
    while ($Server.ClientCount -gt 0 -and [DateTime]::UtcNow -lt $deadline) {
        Start-Sleep -Milliseconds 20
    }
    $Server.ClientCount
}
