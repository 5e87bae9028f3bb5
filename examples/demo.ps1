<#
.SYNOPSIS
    The PsIpc demo: a parent script and its background jobs talk over named pipes.

.DESCRIPTION
    `./build.ps1 Demo` runs this in a fresh pwsh, with $env:PSIPC_MODULE_PATH set to the staged
    module. It tells what happens as it happens, in four acts, in well under 30 seconds:

    1. A Start-Job worker (another process) serves a pipe; the parent connects by name and sends it
       requests; the worker answers each one. Objects cross with their properties, not their methods.
    2. A thread job and three ForEach-Object -Parallel workers report to one inbox (-MaxClients 4);
       the parent reads the reports as they arrive and knows who sent each one (-Envelope).
    3. -Count takes some messages and leaves the rest for later.
    4. Timeouts are errors with their own id, quiet under -ErrorAction SilentlyContinue.

    Exits 0 when every act went as told; any failure stops the script with a non-zero exit code.

.EXAMPLE
    dotnet pwsh -NoProfile -File examples/demo.ps1
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$modulePath = if ($env:PSIPC_MODULE_PATH) { $env:PSIPC_MODULE_PATH } else { Join-Path $PSScriptRoot '../output/PsIpc' }
$modulePath = [System.IO.Path]::GetFullPath($modulePath)
if (-not (Test-Path -LiteralPath (Join-Path $modulePath 'PsIpc.psd1'))) {
    throw "PsIpc is not staged at '$modulePath'. Run: dotnet pwsh -NoProfile -File ./build.ps1 Build"
}
Import-Module -Name $modulePath

$clock = [System.Diagnostics.Stopwatch]::StartNew()
function Say([string] $Who, [string] $Text) {
    Write-Host ('[{0,5:0.0}s] {1,-13} {2}' -f $clock.Elapsed.TotalSeconds, $Who, $Text)
}
function Act([string] $Title) {
    Write-Host ''
    Write-Host $Title -ForegroundColor Cyan
}
function Assert([bool] $Condition, [string] $What) {
    if (-not $Condition) { throw "The demo went wrong: $What" }
}

$jobs = [System.Collections.Generic.List[object]]::new()
try {
    Write-Host "PsIpc $((Get-Module -Name PsIpc).Version) demo, parent process $PID, PowerShell $($PSVersionTable.PSVersion)"

    #region Act 1: a job serves a pipe, the parent is its client
    Act '1. A Start-Job worker, in its own process, serves a pipe; the parent connects by name and asks.'

    $serviceName = "psipc-demo-$PID"
    $service = Start-Job -Name 'squares' -ArgumentList $serviceName, $modulePath -ScriptBlock {
        param($PipeName, $ModulePath)
        Import-Module -Name $ModulePath
        $pipe = New-IpcPipe -Name $PipeName
        $served = 0
        # One client (-MaxClients 1): this loop ends when the parent closes its end.
        Receive-IpcMessage -Channel $pipe -Envelope -TimeoutSeconds 25 | ForEach-Object {
            $request = $_.Body
            $reply = switch ($request.Op) {
                'square' { [pscustomobject]@{ Value = $request.Value; Square = $request.Value * $request.Value; AnsweredBy = $PID } }
                'whoami' { Get-Process -Id $PID }
            }
            Send-IpcMessage -Channel $_.Sender -InputObject $reply
            $served++
        }
        Close-IpcChannel -Channel $pipe
        "served $served requests, then the client left"
    }
    $jobs.Add($service)
    Say 'parent' "started job '$($service.Name)': it will serve the pipe '$serviceName'"

    # The job process takes a moment to start: -Connect waits for the pipe to appear.
    $channel = New-IpcPipe -Name $serviceName -Connect -TimeoutSeconds 20
    Say 'parent' "connected; the server is process $($channel.PeerProcessId) (the parent is $PID)"

    foreach ($n in 2, 3, 4) {
        Send-IpcMessage -Channel $channel -InputObject @{ Op = 'square'; Value = $n }
    }
    Say 'parent' 'sent three requests as hashtables; now reading the answers'
    $answers = @(Receive-IpcMessage -Channel $channel -Count 3 -TimeoutSeconds 10)
    foreach ($a in $answers) { Say 'parent' "  $($a.Value) squared is $($a.Square), answered by process $($a.AnsweredBy)" }
    Assert ($answers.Count -eq 3 -and $answers[2].Square -eq 16) 'three squares'
    Say 'parent' "  each answer is a $($answers[0].pstypenames[0])"

    Send-IpcMessage -Channel $channel -InputObject @{ Op = 'whoami' }
    $process = Receive-IpcMessage -Channel $channel -Count 1 -TimeoutSeconds 10
    Say 'parent' "asked 'whoami' and got a $($process.pstypenames[0])"
    Say 'parent' "  properties made the trip: Id $($process.Id), ProcessName $($process.ProcessName), $([math]::Round($process.WorkingSet64 / 1MB)) MB"
    Say 'parent' "  methods did not: Kill() is there? $([bool]$process.PSObject.Methods['Kill'])"
    Assert ($process.Id -eq $channel.PeerProcessId) 'the job''s process id'

    Close-IpcChannel -Channel $channel
    Say 'parent' 'closed its end; the job''s Receive-IpcMessage ends because its only client left'
    $said = Receive-Job -Job $service -Wait
    Say 'job squares' $said
    #endregion

    #region Act 2: fan-in from a thread job and ForEach-Object -Parallel workers
    Act '2. A thread job and three ForEach-Object -Parallel workers report to one inbox.'

    $inbox = New-IpcPipe -MaxClients 4
    $inboxName = $inbox.Name
    Say 'parent' "opened the inbox '$inboxName' for 4 clients"

    $watcher = Start-ThreadJob -Name 'watcher' -ScriptBlock {
        Import-Module -Name $using:modulePath
        $me = New-IpcPipe -Name $using:inboxName -Connect -TimeoutSeconds 10
        foreach ($step in 1..3) {
            Send-IpcMessage -Channel $me -InputObject "watcher: tick $step"
            Start-Sleep -Milliseconds 150
        }
        Send-IpcMessage -Channel $me -InputObject ([System.Text.Encoding]::UTF8.GetBytes('raw bytes too'))
        Close-IpcChannel -Channel $me
    }
    $jobs.Add($watcher)

    $workers = 1..3 | ForEach-Object -ThrottleLimit 3 -AsJob -Parallel {
        Import-Module -Name $using:modulePath
        $worker = $_
        $me = New-IpcPipe -Name $using:inboxName -Connect -TimeoutSeconds 10
        $from = ($worker - 1) * 10000 + 1
        $to = $worker * 10000
        $count = 0; $largest = 0
        for ($n = [math]::Max($from, 2); $n -le $to; $n++) {
            $isPrime = $true
            for ($d = 2; $d * $d -le $n; $d++) { if ($n % $d -eq 0) { $isPrime = $false; break } }
            if ($isPrime) { $count++; $largest = $n }
        }
        Send-IpcMessage -Channel $me -InputObject ([pscustomobject]@{ Worker = $worker; From = $from; To = $to; Primes = $count; Largest = $largest })
        Close-IpcChannel -Channel $me
    }
    $jobs.Add($workers)
    Say 'parent' 'started a thread job and 3 parallel workers; reading the inbox as reports arrive'

    $reports = [System.Collections.Generic.List[object]]::new()
    # No -Count: the loop ends when the 4 clients have come and gone.
    Receive-IpcMessage -Channel $inbox -Envelope -TimeoutSeconds 20 | ForEach-Object {
        $envelope = $_
        $body = $envelope.Body
        $reports.Add($body)
        $what = switch ($envelope.Format) {
            'Text' { "text '$body'" }
            'Bytes' { "$($envelope.Size) bytes: '$([System.Text.Encoding]::UTF8.GetString($body))'" }
            default { "worker $($body.Worker): $($body.Primes) primes in $($body.From)..$($body.To), the largest $($body.Largest)" }
        }
        Say 'inbox' "from $($envelope.Sender.Name), process $($envelope.SenderProcessId): $what"
    }
    Say 'parent' "the inbox is done: all 4 clients have left ($($reports.Count) messages)"
    Assert ($reports.Count -eq 7) 'seven reports'
    $null = $watcher, $workers | Wait-Job -Timeout 10
    Close-IpcChannel -Channel $inbox
    #endregion

    #region Act 3: -Count leaves the rest
    Act '3. -Count takes some messages and leaves the rest in the channel.'

    $queue = New-IpcPipe
    $producer = New-IpcPipe -Name $queue.Name -Connect -TimeoutSeconds 5
    'one', 'two', 'three', 'four', 'five' | Send-IpcMessage -Channel $producer
    Say 'parent' 'sent five words'
    $first = @(Receive-IpcMessage -Channel $queue -Count 2 -TimeoutSeconds 5)
    Say 'parent' "Receive-IpcMessage -Count 2 took: $($first -join ', ')"
    $rest = @(Receive-IpcMessage -Channel $queue -Count 3 -TimeoutSeconds 5)
    Say 'parent' "the next one took the rest: $($rest -join ', ')"
    Assert ($rest.Count -eq 3 -and $rest[0] -eq 'three') 'the rest of the words'
    #endregion

    #region Act 4: timeouts
    Act '4. A timeout is an error with its own id; -ErrorAction SilentlyContinue keeps it quiet.'

    $none = Receive-IpcMessage -Channel $queue -TimeoutSeconds 0.5 -ErrorAction SilentlyContinue -ErrorVariable timedOut
    Say 'parent' "waited 0.5 s for a sixth word: got $(@($none).Count) message(s) and the error $($timedOut[0].FullyQualifiedErrorId)"
    Assert ($timedOut[0].FullyQualifiedErrorId -like 'ReceiveTimeout,*') 'a ReceiveTimeout'

    Say 'parent' 'open channels now:'
    Get-IpcChannel | Format-Table -AutoSize | Out-String -Width 120 | ForEach-Object { $_.TrimEnd() } | Write-Host
    Close-IpcChannel -Channel $producer, $queue
    Assert (@(Get-IpcChannel).Count -eq 0) 'every channel closed'
    #endregion

    Write-Host ''
    Say 'parent' "done: every channel closed, every job finished"
}
finally {
    Get-IpcChannel | Close-IpcChannel -TimeoutSeconds 1
    foreach ($job in $jobs) { Remove-Job -Job $job -Force -ErrorAction SilentlyContinue }
}
