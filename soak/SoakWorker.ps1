<#
.SYNOPSIS
    One process of the soak (soak/Invoke-Soak.ps1 starts each in a fresh pwsh).

.DESCRIPTION
    -Role Server  serves one transport until its standard input ends (the driver closes it once every
                  client has finished): pipe, TCP, Unix and UDP servers echo each message with a
                  -ScriptBlock handler; the segment server writes a new value every tick; the queue and
                  AMQP servers receive everything their producer sends.
    -Role Client  loads one transport at a steady pace: every -TickMilliseconds a batch of
                  strings, objects and byte arrays of varying size, then waits for the replies (the
                  segment client reads the latest value; queue clients only send), for -Seconds.
    -Role Churn   connects and closes, in rotation, a pipe, TCP, Unix and UDP client of the servers above,
                  and opens and closes the segment and the queue: -Cycles times, paced to end after -Seconds
                  (faster is not tried: the churn is about what each cycle leaves behind).

    Standard output: one JSON line {"event":"ready",...} once the process serves or is connected, and
    one {"event":"result",...} at the end with its counts. Failures that are not expected of a
    transport (a lost UDP datagram is expected) are counted in errors, the first few kept in firstErrors.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [ValidateSet('Server', 'Client', 'Churn')] [string] $Role,
    [ValidateSet('Pipe', 'Tcp', 'Unix', 'Udp', 'Segment', 'Queue', 'Amqp', 'Mixed')] [string] $Transport = 'Mixed',
    # Client and churn: where the servers are (JSON: Pipe, TcpPort, UnixPath, UdpPort, Segment, Queue, AmqpUri, AmqpQueue).
    [string] $Addresses = '{}',
    # The Unix socket path or shared-memory name a server uses.
    [string] $Name = "psipc-soak-$PID",
    [string] $AmqpUri,
    # Client and churn: how long to run, from the moment they are ready.
    [double] $Seconds = 60,
    [int] $TickMilliseconds = 100,
    [int] $BatchSize = 10,
    [int] $Cycles = 10000
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
Import-Module $ModulePath

$script:Errors = 0
$script:BatchNumber = 0
$script:FirstErrors = [System.Collections.Generic.List[string]]::new()
function Add-SoakError([string] $Text) {
    $script:Errors++
    if ($script:FirstErrors.Count -lt 5) { $script:FirstErrors.Add($Text) }
}
function Write-SoakEvent([System.Collections.IDictionary] $Data) {
    [Console]::Out.WriteLine(($Data | ConvertTo-Json -Compress -Depth 4))
    [Console]::Out.Flush()
}
# The managed heap after a full collection, once a minute: what the process still holds. A leak grows it; the working
# set also grows when the GC merely lets its heap get larger between collections, which is not a leak. One forced
# collection a minute is far fewer than the load causes by itself.
$script:HeapSamples = [System.Collections.Generic.List[object]]::new()
$script:NextHeapSample = [DateTime]::UtcNow
function Measure-SoakHeap {
    $now = [DateTime]::UtcNow
    if ($now -lt $script:NextHeapSample) { return }
    $script:NextHeapSample = $now.AddSeconds(60)
    [GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
    $script:HeapSamples.Add([ordered]@{ at = [Math]::Round(($now - [DateTime]::UnixEpoch).TotalSeconds, 1); mib = [Math]::Round([GC]::GetTotalMemory($false) / 1MB, 2) })
}
$address = $Addresses | ConvertFrom-Json
$random = [Random]::new($PID)
# Byte arrays up to 64 KiB (UDP: up to 8 KiB, one datagram), re-made each batch so buffers of every size come and go.
$maxBytes = if ($Transport -eq 'Udp') { 8KB } else { 64KB }

function New-SoakBatch {
    # A batch of $BatchSize messages: strings of 16 B to 4 KiB, byte arrays of 0 to $maxBytes, and objects.
    # Each message carries the batch's number (-Tag; byte arrays in their first 4 bytes, so at least 4 long), so that
    # a UDP client can tell a late echo of an earlier batch from an echo of this one (Get-SoakTag).
    param([int] $Tag)
    $text = [System.Collections.Generic.List[object]]::new()
    $objects = [System.Collections.Generic.List[object]]::new()
    for ($i = 0; $i -lt $BatchSize; $i++) {
        switch ($i % 3) {
            0 { $text.Add("soak-$Tag-" + ('x' * $random.Next(11, 4096))) }
            1 { $bytes = [byte[]]::new($random.Next(4, $maxBytes)); $random.NextBytes($bytes); [BitConverter]::GetBytes($Tag).CopyTo($bytes, 0); $text.Add($bytes) }
            2 { $objects.Add([pscustomobject]@{ Id = $i; Batch = $Tag; Name = "item-$i"; At = [DateTime]::UtcNow; Tags = @('a', 'b'); Size = $random.Next() }) }
        }
    }
    [pscustomobject]@{ Text = $text.ToArray(); Objects = $objects.ToArray(); Count = $text.Count + $objects.Count }
}

function Get-SoakTag($message) {
    # The batch number New-SoakBatch put into a message (or its echo); -1 when it has none.
    if ($message -is [byte[]]) { if ($message.Length -ge 4) { return [BitConverter]::ToInt32($message, 0) } return -1 }
    if ($message -is [string]) { if ($message -match '^soak-(\d+)-') { return [int]$Matches[1] } return -1 }
    if ($null -ne $message -and $message.PSObject.Properties['Batch']) { return [int]$message.Batch }
    -1
}

function Test-SoakEcho($want, $got) {
    # Each echo is its request: the same text, a byte array of the same length, an object with the same Id.
    if ($want -is [byte[]]) { return $got -is [byte[]] -and $got.Length -eq $want.Length }
    if ($want -is [string]) { return $got -is [string] -and $got -eq $want }
    $null -ne $got -and $null -ne $got.PSObject.Properties['Id'] -and $got.Id -eq $want.Id
}

# Objects go as CliXml where the peer is authenticated (pipe, Unix socket, shared memory), as JSON elsewhere.
$objectFormat = if ($Transport -in 'Tcp', 'Udp', 'Amqp') { 'Json' } else { 'CliXml' }

function Wait-NextTick([datetime] $Next) {
    # Pacing, not synchronisation: the load is a steady rate, not as fast as possible.
    $ms = ($Next - [DateTime]::UtcNow).TotalMilliseconds
    if ($ms -gt 0) { Start-Sleep -Milliseconds ([int][Math]::Min($ms, 1000)) }
}

function Invoke-Server {
    $echo = { param($message) Write-Output -NoEnumerate $message }
    $counts = [ordered]@{}
    # Console.In's async reads complete synchronously: read the stream itself (a pool thread waits for its end).
    $stdin = [System.IO.StreamReader]::new([Console]::OpenStandardInput()).ReadToEndAsync()
    switch ($Transport) {
        'Pipe' { $channel = New-IpcPipe -ScriptBlock $echo -ThrottleLimit 2; $ready = @{ Pipe = $channel.Name } }
        'Tcp' { $channel = Start-IpcSocketServer -Port 0 -ScriptBlock $echo -ThrottleLimit 2; $ready = @{ TcpPort = $channel.Port } }
        'Unix' { $channel = Start-IpcSocketServer -Path $Name -ScriptBlock $echo -ThrottleLimit 2; $ready = @{ UnixPath = $Name } }
        'Udp' { $channel = Start-IpcSocketServer -Port 0 -Udp -ScriptBlock $echo -ThrottleLimit 2; $ready = @{ UdpPort = $channel.Port } }
        'Segment' { $channel = New-SharedMemory -Name $Name -Size 1MB; $ready = @{ Segment = $Name } }
        'Queue' { $channel = New-SharedMemory -Name $Name -Size 16MB -Queue; $ready = @{ Queue = $Name } }
        'Amqp' { $channel = Connect-IpcQueue -Uri $AmqpUri -Queue $Name -TimeoutSeconds 60; $ready = @{ AmqpUri = $AmqpUri; AmqpQueue = $Name } }
    }
    Write-SoakEvent (@{ event = 'ready'; role = $Role; transport = $Transport } + $ready)
    $received = 0; $writes = 0
    $next = [DateTime]::UtcNow
    try {
        while (-not $stdin.IsCompleted) {
            Measure-SoakHeap
            switch ($Transport) {
                'Segment' {
                    $batch = New-SoakBatch
                    $value = @($batch.Text + $batch.Objects)[$writes % $batch.Count]
                    Write-SharedMemory $channel -InputObject $value
                    $writes++
                    $next = $next.AddMilliseconds($TickMilliseconds)
                    Wait-NextTick $next
                }
                { $_ -in 'Queue', 'Amqp' } {
                    $received += @(Receive-IpcMessage $channel -TimeoutSeconds 1 -ErrorAction SilentlyContinue -ErrorVariable receiveErrors).Count
                    foreach ($e in $receiveErrors) { if ($e.FullyQualifiedErrorId -notlike 'ReceiveTimeout*') { Add-SoakError $e.FullyQualifiedErrorId } }
                }
                default { $null = $stdin.Wait(1000) }   # the handler serves; this thread only waits for the end
            }
        }
        if ($Transport -in 'Pipe', 'Tcp', 'Unix', 'Udp') {
            $counts.handled = $channel.Handler.MessagesHandled
            $counts.handlerErrors = $channel.HandlerErrors
            foreach ($e in @($channel.RecentHandlerErrors)) { Add-SoakError "handler: $e" }
        }
        if ($Transport -eq 'Udp') { $counts.datagramsDropped = $channel.DatagramsDropped }
    }
    finally {
        if ($Transport -in 'Tcp', 'Unix', 'Udp') { Stop-IpcSocketServer $channel -Confirm:$false } else { Close-IpcChannel $channel }
        if ($Transport -in 'Segment', 'Queue') { Remove-SharedMemory -Name $Name -Confirm:$false }
    }
    $counts.received = $received
    $counts.writes = $writes
    $counts
}

function Connect-SoakChannel([string] $Kind) {
    switch ($Kind) {
        'Pipe' { New-IpcPipe -Name $address.Pipe -Connect -TimeoutSeconds 30 }
        'Tcp' { Connect-IpcSocket -Port $address.TcpPort -TimeoutSeconds 30 }
        'Unix' { Connect-IpcSocket -Path $address.UnixPath -TimeoutSeconds 30 }
        'Udp' { Connect-IpcSocket -Port $address.UdpPort -Udp }
        'Segment' { New-SharedMemory -Name $address.Segment -Open }
        'Queue' { New-SharedMemory -Name $address.Queue -Open }
        'Amqp' { Connect-IpcQueue -Uri $address.AmqpUri -Queue $address.AmqpQueue -TimeoutSeconds 60 }
    }
}

function Invoke-ClientBatch($channel) {
    # One tick of a client: a batch sent and its echoes taken, or one read of the segment.
    $done = @{ Sent = 0; Received = 0; Lost = 0; Reads = 0 }
    if ($Transport -eq 'Segment') {
        $null = Read-SharedMemory $channel -TimeoutSeconds 5
        $done.Reads = 1
        return $done
    }
    $script:BatchNumber++
    $batch = New-SoakBatch -Tag $script:BatchNumber
    $batch.Text | Send-IpcMessage $channel -TimeoutSeconds 30
    $batch.Objects | Send-IpcMessage $channel -Format $objectFormat -TimeoutSeconds 30
    $done.Sent = $batch.Count
    if ($Transport -notin 'Pipe', 'Tcp', 'Unix', 'Udp') { return $done }
    $requests = @($batch.Text) + @($batch.Objects)
    if ($Transport -eq 'Udp') {
        # UDP may lose a datagram either way (counted, not an error), and an echo later than the 2 s waited for arrives
        # with a later batch: it is recognised by its batch number and set aside (it was counted lost with its own).
        # This batch's echoes must come in the order sent, the missing ones left out.
        $replies = [System.Collections.Generic.List[object]]::new()
        $until = [DateTime]::UtcNow.AddSeconds(2)
        while ($replies.Count -lt $batch.Count) {
            $left = ($until - [DateTime]::UtcNow).TotalSeconds
            if ($left -le 0) { break }
            foreach ($r in @(Receive-IpcMessage $channel -Count ($batch.Count - $replies.Count) -TimeoutSeconds $left -ErrorAction SilentlyContinue)) {
                if ((Get-SoakTag $r) -eq $script:BatchNumber) { $replies.Add($r) }
            }
        }
        $done.Received = $replies.Count
        $done.Lost = $batch.Count - $replies.Count
        $next = 0
        foreach ($got in $replies) {
            while ($next -lt $requests.Count -and -not (Test-SoakEcho $requests[$next] $got)) { $next++ }
            if ($next -ge $requests.Count) { Add-SoakError "a UDP echo came out of the order of its batch ($($got.GetType().Name))"; break }
            $next++
        }
        return $done
    }
    $replies = @(Receive-IpcMessage $channel -Count $batch.Count -TimeoutSeconds 30 -ErrorAction SilentlyContinue -ErrorVariable receiveErrors)
    $done.Received = $replies.Count
    if ($replies.Count -ne $batch.Count) {
        Add-SoakError "$($batch.Count - $replies.Count) replies missing: $(@($receiveErrors | ForEach-Object FullyQualifiedErrorId) -join ', ')"
        return $done
    }
    for ($i = 0; $i -lt $requests.Count; $i++) {
        $want = $requests[$i]; $got = $replies[$i]
        if (-not (Test-SoakEcho $want $got)) { Add-SoakError "echo $i of a batch was not its request ($($want.GetType().Name) -> $(if ($null -eq $got) { 'null' } else { $got.GetType().Name }))"; break }
    }
    $done
}

function Invoke-Client {
    $channel = Connect-SoakChannel $Transport
    $warm = Invoke-ClientBatch $channel   # the first batch pays for loading and compiling: before the go, counted
    Write-SoakEvent @{ event = 'ready'; role = $Role; transport = $Transport }
    $null = [Console]::In.ReadLine()   # the driver says go once every client is ready: all start together
    $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
    $sent = $warm.Sent; $received = $warm.Received; $lost = $warm.Lost; $reads = $warm.Reads
    $next = [DateTime]::UtcNow
    try {
        while ([DateTime]::UtcNow -lt $deadline) {
            Measure-SoakHeap
            try {
                $done = Invoke-ClientBatch $channel
                $sent += $done.Sent; $received += $done.Received; $lost += $done.Lost; $reads += $done.Reads
            }
            catch { Add-SoakError "$($_.FullyQualifiedErrorId): $($_.Exception.Message)" }
            $next = $next.AddMilliseconds($TickMilliseconds)
            Wait-NextTick $next
        }
    }
    finally { Close-IpcChannel $channel }
    [ordered]@{ sent = $sent; received = $received; lost = $lost; reads = $reads }
}

function Invoke-ChurnCycle([string] $Kind, [string] $Text) {
    $channel = Connect-SoakChannel $Kind
    try {
        if ($Kind -in 'Pipe', 'Tcp', 'Unix') {
            Send-IpcMessage $channel $Text -TimeoutSeconds 30
            $reply = Receive-IpcMessage $channel -Count 1 -TimeoutSeconds 30
            if ($reply -ne $Text) { Add-SoakError "$Kind churn reply was '$reply'" }
        }
        elseif ($Kind -eq 'Udp') { Send-IpcMessage $channel $Text }   # a reply may be lost: not waited for
        elseif ($Kind -eq 'Segment') { $null = Read-SharedMemory $channel -TimeoutSeconds 5 }
    }
    finally { Close-IpcChannel $channel }
}

function Invoke-Churn {
    $kinds = @('Pipe', 'Tcp', 'Unix', 'Udp', 'Segment', 'Queue')
    foreach ($k in $kinds) { Invoke-ChurnCycle $k 'warm' }   # first uses load and compile: before the go
    Write-SoakEvent @{ event = 'ready'; role = $Role; transport = 'Mixed' }
    $null = [Console]::In.ReadLine()
    $start = [DateTime]::UtcNow
    $deadline = $start.AddSeconds($Seconds)
    $interval = ($deadline - $start).TotalMilliseconds / [Math]::Max(1, $Cycles)
    $done = 0; $perKind = [ordered]@{}; $slowest = [ordered]@{}
    foreach ($k in $kinds) { $perKind[$k] = 0; $slowest[$k] = 0 }
    $watch = [System.Diagnostics.Stopwatch]::new()
    while ($done -lt $Cycles -and [DateTime]::UtcNow -lt $deadline) {
        Measure-SoakHeap
        $kind = $kinds[$done % $kinds.Count]
        $watch.Restart()
        try {
            Invoke-ChurnCycle $kind "churn-$done"
            $perKind[$kind]++
            $slowest[$kind] = [Math]::Max($slowest[$kind], [int]$watch.ElapsedMilliseconds)
        }
        catch { Add-SoakError "$kind cycle ${done}: $($_.FullyQualifiedErrorId): $($_.Exception.Message)" }
        $done++
        Wait-NextTick $start.AddMilliseconds($done * $interval)
    }
    [ordered]@{ cycles = $done; target = $Cycles; perKind = $perKind; slowestMs = $slowest }
}

$stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
$result = switch ($Role) {
    'Server' { Invoke-Server }
    'Client' { Invoke-Client }
    'Churn' { Invoke-Churn }
}
$result.event = 'result'
$result.role = $Role
$result.transport = $Transport
$result.seconds = [Math]::Round($stopwatch.Elapsed.TotalSeconds, 1)
$result.errors = $script:Errors
$result.firstErrors = $script:FirstErrors.ToArray()
$result.heap = $script:HeapSamples.ToArray()
Write-SoakEvent $result
