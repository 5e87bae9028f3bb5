# PsIpc socket rows, asking side: connects $Clients clients (Connect-IpcSocket, all in this one pwsh
# and one runspace) to the endpoint the echo worker published, then times request/reply round trips
# against its script-block server.
#
# One client: the script loop of the pipe round-trip row, `Send-IpcMessage $c 'ping';
#   $reply = Receive-IpcMessage $c -Count 1`, $Count times after untimed round trips: at least $WarmUp and
#   for at least $WarmUpSeconds (the tiered JIT of both processes settles; see PsIpcRoundTrip.ps1).
# Several clients: $Rounds rounds; in each, every client sends one request (so all $Clients requests
#   are in flight at once), then every client's reply is read. Timed from the first request to the
#   last reply (connecting is outside the figure). Every reply is checked; a connect failure, a
#   missing or wrong reply (30 s per reply) or a failed send is counted in errors rather than thrown,
#   so the load row can report them.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $ReadyFile,
    [int] $Clients = 1,
    [int] $Count = 1000,
    [int] $Rounds = 10,
    [int] $WarmUp = 200,
    [double] $WarmUpSeconds = 3
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
. $PSScriptRoot/BenchSocket.ps1
Import-Module $ModulePath

$endpoint = Wait-BenchEndpoint -ReadyFile $ReadyFile

if ($Clients -eq 1) {
    $c = Connect-IpcSocket @endpoint -TimeoutSeconds 30
    try {
        $warming = [System.Diagnostics.Stopwatch]::StartNew()
        for ($i = 0; $i -lt $WarmUp -or $warming.Elapsed.TotalSeconds -lt $WarmUpSeconds; $i++) {
            Send-IpcMessage $c 'ping'
            $null = Receive-IpcMessage $c -Count 1
        }
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        for ($i = 0; $i -lt $Count; $i++) {
            Send-IpcMessage $c 'ping'
            $reply = Receive-IpcMessage $c -Count 1
        }
        $stopwatch.Stop()
    }
    finally {
        Close-IpcChannel $c
        Complete-BenchClients -ReadyFile $ReadyFile
    }
    if ($reply -ne 'ping') {
        throw "the echo answered '$reply' instead of 'ping'"
    }
    Write-BenchResult ([ordered]@{ messages = $Count; seconds = $stopwatch.Elapsed.TotalSeconds; errors = 0 })
    return
}

$errors = 0
$firstErrors = [System.Collections.Generic.List[string]]::new()
function Add-BenchError([string] $Text) {
    $script:errors++
    if ($firstErrors.Count -lt 5) { $firstErrors.Add($Text) }
}

$connectClock = [System.Diagnostics.Stopwatch]::StartNew()
$channels = [System.Collections.Generic.List[object]]::new()
for ($i = 0; $i -lt $Clients; $i++) {
    try {
        $channels.Add((Connect-IpcSocket @endpoint -TimeoutSeconds 30 -ErrorAction Stop))
    }
    catch {
        Add-BenchError "connect $i : $($_.FullyQualifiedErrorId) $($_.Exception.Message)"
    }
}
$connectClock.Stop()

$trips = 0
$stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
for ($round = 0; $round -lt $Rounds; $round++) {
    $expected = "ping $round"
    $sent = [bool[]]::new($channels.Count)
    for ($i = 0; $i -lt $channels.Count; $i++) {
        try {
            Send-IpcMessage $channels[$i] $expected -ErrorAction Stop
            $sent[$i] = $true
        }
        catch {
            Add-BenchError "send client $i round $round : $($_.FullyQualifiedErrorId)"
        }
    }
    for ($i = 0; $i -lt $channels.Count; $i++) {
        if (-not $sent[$i]) { continue }
        $replyErrors = $null
        $reply = Receive-IpcMessage $channels[$i] -Count 1 -TimeoutSeconds 30 -ErrorAction SilentlyContinue -ErrorVariable replyErrors
        if ($replyErrors) {
            Add-BenchError "receive client $i round $round : $($replyErrors[0].FullyQualifiedErrorId)"
        }
        elseif ($reply -cne $expected) {
            Add-BenchError "client $i round $round : '$reply' instead of '$expected'"
        }
        else {
            $trips++
        }
    }
}
$stopwatch.Stop()

$closeErrors = $null
$channels | Close-IpcChannel -ErrorAction SilentlyContinue -ErrorVariable closeErrors
foreach ($e in @($closeErrors)) { if ($e) { Add-BenchError "close: $($e.FullyQualifiedErrorId)" } }
Complete-BenchClients -ReadyFile $ReadyFile

Write-BenchResult ([ordered]@{
    messages       = $trips
    seconds        = $stopwatch.Elapsed.TotalSeconds
    clients        = $channels.Count
    connectSeconds = $connectClock.Elapsed.TotalSeconds
    errors         = $errors
    firstErrors    = $firstErrors.ToArray()
})
