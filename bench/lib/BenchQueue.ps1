# The RabbitMQ queue rows of bench/Invoke-Bench.ps1 (issue 10, item 6): PsIpc's queue channel against
# Debian's python3-pika, same traffic, one producer process and one consumer process, against a private
# broker that the rows start (build/RabbitMqBroker.psm1, as the tests do) and stop again. Dot-sourced by
# the harness, which calls Measure-QueueRows, Get-QueueTargets and Get-QueueMethodNotes. Uses the
# harness's helpers (Measure-Repeated, New-Measurement, Start-BenchPwsh, ...) and its $script:Repetitions,
# $script:ModuleManifest and $script:RepoRoot.

$script:QueueCounts = if ($Quick) {
    @{ QueueConfirmed = 5000; QueueUnconfirmed = 50000 }
}
else {
    @{ QueueConfirmed = 20000; QueueUnconfirmed = 200000 }
}
# Connect-IpcQueue's default -Prefetch: the PsIpc consumer runs with its default, the pika consumer is
# given the same number (the consumer worker reports the channel's Prefetch, checked against this).
$script:QueuePrefetch = 256
$script:QueueCounter = 0

$script:RowQueuePublish = '13. RabbitMQ queue: publish 16-byte text messages'
$script:RowQueueConsume = '14. RabbitMQ queue: consume with acks'

function Get-BenchPikaPython {
    # python3-pika is a Debian package: it belongs to /usr/bin/python3, which may not be the python3 on PATH.
    foreach ($candidate in '/usr/bin/python3', $script:Python) {
        if (-not $candidate -or -not (Test-Path -LiteralPath $candidate)) { continue }
        & $candidate -c 'import pika' 2>$null
        if ($LASTEXITCODE -eq 0) { return $candidate }
    }
    $null
}

function Start-BenchBroker {
    # A private broker for the queue rows: Debian's rabbitmq-server on its own ports and data directory.
    Import-Module -Name (Join-Path $script:RepoRoot 'build/RabbitMqBroker.psm1') -Force
    if (-not (Test-RabbitMqServer)) { Install-RabbitMqServer }   # apt-get as root; else says how
    $directory = Join-Path $script:RepoRoot "output/rabbitmq/bench-$PID"
    Write-Host "  starting a private RabbitMQ broker in $directory"
    Start-RabbitMqBroker -Directory $directory
}

function Find-BrokerVmPid {
    # The broker's Erlang VM (beam.smp), a descendant of the rabbitmq-server script the helper started; 0 without /proc.
    param([int] $RootPid)
    if (-not (Test-Path -LiteralPath '/proc/self/stat')) { return 0 }
    $children = @{}
    foreach ($dir in [System.IO.Directory]::GetDirectories('/proc')) {
        $name = [System.IO.Path]::GetFileName($dir)
        if ($name -notmatch '^\d+$') { continue }
        try { $stat = [System.IO.File]::ReadAllText("$dir/stat") } catch { continue }
        $parent = [int](($stat.Substring($stat.LastIndexOf(')') + 2) -split ' ')[1])
        if (-not $children.ContainsKey($parent)) { $children[$parent] = [System.Collections.Generic.List[int]]::new() }
        $children[$parent].Add([int]$name)
    }
    $queue = [System.Collections.Generic.Queue[int]]::new()
    $queue.Enqueue($RootPid)
    while ($queue.Count -gt 0) {
        $id = $queue.Dequeue()
        try { if ([System.IO.File]::ReadAllText("/proc/$id/comm").Trim() -eq 'beam.smp') { return $id } } catch { }
        if ($children.ContainsKey($id)) { foreach ($child in $children[$id]) { $queue.Enqueue($child) } }
    }
    0
}

function Get-ProcCpuSeconds {
    # A process's CPU time so far (user + system, all threads) from /proc/<pid>/stat; $null when unknown.
    param([int] $Id)
    if ($Id -le 0) { return $null }
    try { $stat = [System.IO.File]::ReadAllText("/proc/$Id/stat") } catch { return $null }
    $fields = $stat.Substring($stat.LastIndexOf(')') + 2) -split ' '
    ([double]$fields[11] + [double]$fields[12]) / $script:ClockTicks   # utime, stime (fields 14 and 15 of stat)
}

function Get-MachineCpuSeconds {
    # CPU time of the whole machine so far, busy and in all, summed over its cores, from /proc/stat; $null without it.
    try { $line = ([System.IO.File]::ReadAllLines('/proc/stat'))[0] } catch { return $null }
    $v = [double[]]@(($line -split '\s+')[1..8])   # user nice system idle iowait irq softirq steal
    [pscustomobject]@{ Busy = ($v[0] + $v[1] + $v[2] + $v[5] + $v[6] + $v[7]) / $script:ClockTicks; All = ($v | Measure-Object -Sum).Sum / $script:ClockTicks }
}

function Stop-BenchBroker {
    param($Broker)
    if (-not $Broker) { return }
    Write-Host "  stopping the broker $($Broker.NodeName)"
    Stop-RabbitMqBroker $Broker
    Remove-Item -LiteralPath $Broker.Directory -Recurse -Force -ErrorAction Ignore
}

function Build-RawAmqpAnchor {
    # Builds bench/RawAmqp (RabbitMQ.Client from C#, standalone); returns the error text or $null.
    $project = Join-Path $PSScriptRoot '../RawAmqp/RawAmqp.csproj'
    Write-Host "  dotnet build $project -c Release"
    try {
        $handle = Start-BenchProcess -Label 'dotnet build RawAmqp' -FilePath $script:Dotnet -ArgumentList @(
            'build', $project, '-c', 'Release', '-nologo', '-v', 'q')
        $null = Wait-BenchProcess -Handle $handle -TimeoutSeconds 300 -RawOutput
        $script:RawAmqpDll = Join-Path $PSScriptRoot '../RawAmqp/bin/Release/net10.0/RawAmqp.dll'
        $null
    }
    catch {
        Write-Host "    $($_.Exception.Message)" -ForegroundColor Red
        "RawAmqp did not build: $($_.Exception.Message)"
    }
}

function New-BenchQueueName {
    param([string] $Implementation)
    $script:QueueCounter++
    "bench-$Implementation-$PID-$script:QueueCounter"
}

function Start-QueueSide {
    # One producer or consumer process: a pwsh running the PsIpc worker, or the pika anchor.
    param(
        [ValidateSet('PsIpc', 'Pika', 'Raw')] [string] $Implementation,
        [ValidateSet('Producer', 'Consumer')] [string] $Side,
        [string] $Queue,
        [int] $Count,
        [ValidateSet('On', 'Off')] [string] $Confirm = 'On'
    )
    $uri = $script:QueueBroker.Uri
    if ($Implementation -eq 'PsIpc') {
        $parameters = [ordered]@{ ModulePath = $script:ModuleManifest; Uri = $uri; Queue = $Queue; Count = $Count }
        if ($Side -eq 'Producer') { $parameters.Confirm = $Confirm }
        return Start-BenchPwsh -Label "PsIpc queue $($Side.ToLower())" -Worker "PsIpcQueue$Side" -Parameters $parameters
    }
    if ($Implementation -eq 'Raw') {
        # The C# anchor only produces; its queue is consumed by the PsIpc consumer (a check that all arrived).
        if ($Side -eq 'Consumer') { return Start-QueueSide PsIpc Consumer $Queue $Count }
        if ($script:RawAmqpBuildError) { throw $script:RawAmqpBuildError }
        return Start-BenchProcess -Label 'RawAmqp produce' -FilePath $script:Dotnet -ArgumentList @(
            $script:RawAmqpDll, 'produce', $uri, $Queue, [string]$Count, ($Confirm -eq 'On' ? 'confirm' : 'noconfirm'))
    }
    $arguments = if ($Side -eq 'Producer') {
        'produce', $uri, $Queue, [string]$Count, ($Confirm -eq 'On' ? 'confirm' : 'noconfirm')
    }
    else {
        'consume', $uri, $Queue, [string]$Count, [string]$script:QueuePrefetch
    }
    Start-BenchProcess -Label "amqp_pika.py $($arguments[0])" -FilePath $script:PikaPython -ArgumentList (@(
            (Join-Path $PSScriptRoot '../anchors/amqp_pika.py')) + $arguments)
}

function Invoke-QueueRun {
    # One run: the producer publishes $Count messages to a fresh queue while no consumer runs (its own
    # clock: connected to closed), then a consumer takes them all (first message to last). Returns both results.
    param([ValidateSet('PsIpc', 'Pika', 'Raw')] [string] $Implementation, [ValidateSet('On', 'Off')] [string] $Confirm, [int] $Count)
    if ($Implementation -ne 'Pika') { Assert-PsIpcModule }
    elseif (-not $script:PikaPython) { throw 'No python3 with pika (Debian: apt-get install python3-pika, for /usr/bin/python3).' }
    $queue = New-BenchQueueName $Implementation
    # What the broker and the machine spent while the producer ran (its whole process: start-up included,
    # when the broker is idle), to tell a client-bound producer from a broker-bound one.
    $brokerCpu = Get-ProcCpuSeconds $script:QueueBrokerVm
    $machineCpu = Get-MachineCpuSeconds
    $producer = Start-QueueSide $Implementation Producer $queue $Count $Confirm
    $published = Wait-BenchProcess -Handle $producer -TimeoutSeconds 300
    $brokerAfter = Get-ProcCpuSeconds $script:QueueBrokerVm
    $machineAfter = Get-MachineCpuSeconds
    if ($null -ne $brokerCpu -and $null -ne $brokerAfter) {
        $published | Add-Member -NotePropertyName brokerCpuSeconds -NotePropertyValue ($brokerAfter - $brokerCpu)
    }
    if ($machineCpu -and $machineAfter) {
        $all = $machineAfter.All - $machineCpu.All
        $published | Add-Member -NotePropertyName machineBusy -NotePropertyValue ($(if ($all -gt 0) { ($machineAfter.Busy - $machineCpu.Busy) / $all } else { 0 }))
    }
    $consumer = Start-QueueSide $Implementation Consumer $queue $Count
    $consumed = Wait-BenchProcess -Handle $consumer -TimeoutSeconds 300
    if ($consumed.psobject.Properties['prefetch'] -and $consumed.prefetch -ne $script:QueuePrefetch) {
        throw "the $Implementation consumer ran with prefetch $($consumed.prefetch), the bench assumes $script:QueuePrefetch for both"
    }
    [pscustomobject]@{ Publish = $published; Consume = $consumed }
}

function Get-QueueImplementationName([string] $Implementation) {
    switch ($Implementation) { 'PsIpc' { 'PsIpc' } 'Pika' { 'python3-pika' } 'Raw' { 'RabbitMQ.Client in C#' } }
}

function Measure-QueueRows {
    $publishRow = $script:RowQueuePublish
    $consumeRow = $script:RowQueueConsume
    Write-Host "$publishRow; $consumeRow" -ForegroundColor Cyan
    $counts = $script:QueueCounts
    $script:PikaPython = Get-BenchPikaPython
    $script:PikaVersion = if ($script:PikaPython) { (& $script:PikaPython -c 'import pika, sys; print("pika " + pika.__version__ + ", Python " + sys.version.split()[0])') -join ' ' } else { 'pika not found' }
    $script:RawAmqpBuildError = Build-RawAmqpAnchor
    $script:QueueBroker = $null
    $brokerError = $null
    try {
        $script:QueueBroker = Start-BenchBroker
        $script:BrokerVersion = (Invoke-RabbitMqCtl $script:QueueBroker version) -join ' '
        $script:QueueBrokerVm = Find-BrokerVmPid $script:QueueBroker.NodePid
        $script:ClockTicks = [double]((& getconf CLK_TCK 2>$null) | Select-Object -First 1)
        if (-not $script:ClockTicks) { $script:ClockTicks = 100 }
    }
    catch {
        $brokerError = "no RabbitMQ broker: $($_.Exception.Message)"
        Write-Host "    $brokerError" -ForegroundColor Red
    }
    try {
        $lines = @(
            @{ Mode = 'On'; Count = $counts.QueueConfirmed; Label = 'with publisher confirms' }
            @{ Mode = 'Off'; Count = $counts.QueueUnconfirmed; Label = 'without confirms' }
        )
        foreach ($line in $lines) {
            # PsIpc, pika and the C# client take turns, run by run, so that all meet the same machine load.
            $runs = Measure-Repeated "queue $($line.Label): PsIpc, pika, C# in turn" {
                if ($brokerError) { throw $brokerError }
                [pscustomobject]@{
                    PsIpc = Invoke-QueueRun PsIpc $line.Mode $line.Count
                    Pika  = Invoke-QueueRun Pika $line.Mode $line.Count
                    Raw   = Invoke-QueueRun Raw $line.Mode $line.Count
                }
            }
            foreach ($implementation in 'PsIpc', 'Pika', 'Raw') {
                $name = Get-QueueImplementationName $implementation
                $null = New-Measurement -Row $publishRow -Implementation "$name, $($line.Label)" -Unit 'msg/s' -Runs $runs -Count $line.Count `
                    -Value ([scriptblock]::Create("param(`$r) `$r.$implementation.Publish.messages / `$r.$implementation.Publish.seconds"))
            }
            foreach ($implementation in 'PsIpc', 'Pika', 'Raw') {
                # Context: what the producer process spent (all its threads), whichever side waited for the other.
                $name = Get-QueueImplementationName $implementation
                $null = New-Measurement -Row $publishRow -Implementation "$name, $($line.Label): producer CPU" -Unit 'CPU µs/msg' -Runs $runs -Count $line.Count `
                    -Value ([scriptblock]::Create("param(`$r) `$r.$implementation.Publish.cpuSeconds / `$r.$implementation.Publish.messages * 1e6"))
            }
            foreach ($implementation in 'PsIpc', 'Pika', 'Raw') {
                # Context: what the broker's Erlang VM spent per message while that producer ran, and how busy the
                # machine's cores were meanwhile. A broker near the cores' limit sets the pace, whatever the client.
                $name = Get-QueueImplementationName $implementation
                if ($runs.Results | Where-Object { $null -eq $_.$implementation.Publish.psobject.Properties['brokerCpuSeconds'] }) { continue }
                $null = New-Measurement -Row $publishRow -Implementation "$name, $($line.Label): broker CPU" -Unit 'CPU µs/msg' -Runs $runs -Count $line.Count `
                    -Value ([scriptblock]::Create("param(`$r) `$r.$implementation.Publish.brokerCpuSeconds / `$r.$implementation.Publish.messages * 1e6"))
                $null = New-Measurement -Row $publishRow -Implementation "$name, $($line.Label): machine busy" -Unit '% of all cores' -Runs $runs -Count $line.Count `
                    -Value ([scriptblock]::Create("param(`$r) `$r.$implementation.Publish.machineBusy * 100"))
            }
            if ($line.Mode -eq 'Off') {
                # The consumer of the larger runs: the queue full when it starts.
                foreach ($implementation in 'PsIpc', 'Pika') {
                    $name = $implementation -eq 'PsIpc' ? 'PsIpc' : 'python3-pika'
                    $null = New-Measurement -Row $consumeRow -Implementation "$name, prefetch $script:QueuePrefetch" -Unit 'msg/s' -Runs $runs -Count $line.Count `
                        -Value ([scriptblock]::Create("param(`$r) `$r.$implementation.Consume.messages / `$r.$implementation.Consume.seconds"))
                    $null = New-Measurement -Row $consumeRow -Implementation "$name, prefetch $script:QueuePrefetch`: consumer CPU" -Unit 'CPU µs/msg' -Runs $runs -Count $line.Count `
                        -Value ([scriptblock]::Create("param(`$r) `$r.$implementation.Consume.cpuSeconds / `$r.$implementation.Consume.messages * 1e6"))
                }
            }
        }
    }
    finally {
        Stop-BenchBroker $script:QueueBroker
    }
}

function Get-QueueTargets {
    foreach ($label in 'with publisher confirms', 'without confirms') {
        New-Target "queue publish $label vs python3-pika" '>= 2.00x' @(
            (Find-Measurement $script:RowQueuePublish "PsIpc, $label"), (Find-Measurement $script:RowQueuePublish "python3-pika, $label")) {
            param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), ($psipc / $anchor -ge 2)
        }
    }
    foreach ($label in 'with publisher confirms', 'without confirms') {
        New-Target "queue publish $label vs RabbitMQ.Client in C# (the client's and broker's ceiling)" 'context' @(
            (Find-Measurement $script:RowQueuePublish "PsIpc, $label"), (Find-Measurement $script:RowQueuePublish "RabbitMQ.Client in C#, $label")) {
            param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), $true
        } | ForEach-Object { if ($_.Result -eq 'PASS') { $_.Result = 'info' }; $_ }
    }
    # The most any client could publish, relative to pika, while it shares the cores with the broker: each message
    # costs the broker B µs and the client C µs of CPU, so a CPU-bound pair publishes at (cores) / (B + C), and a client
    # that cost nothing at (cores) / B: (B + C_pika) / B times pika. Below 2.00x, no client reaches the target here.
    $label = 'without confirms'
    if (Find-Measurement $script:RowQueuePublish "python3-pika, $label`: broker CPU") {
        New-Target "queue publish $label`: what a client costing no CPU could reach vs python3-pika ((broker + pika CPU) / broker CPU)" 'context' @(
            (Find-Measurement $script:RowQueuePublish "python3-pika, $label`: broker CPU"), (Find-Measurement $script:RowQueuePublish "python3-pika, $label`: producer CPU")) {
            param($broker, $pika) (Format-Ratio (($broker + $pika) / $broker)), $true
        } | ForEach-Object { if ($_.Result -eq 'PASS') { $_.Result = 'info' }; $_ }
    }
    New-Target 'queue consume with acks vs python3-pika' 'context' @(
        (Find-Measurement $script:RowQueueConsume "PsIpc, prefetch $script:QueuePrefetch"), (Find-Measurement $script:RowQueueConsume "python3-pika, prefetch $script:QueuePrefetch")) {
        param($psipc, $anchor) (Format-Ratio ($psipc / $anchor)), $true
    } | ForEach-Object { if ($_.Result -eq 'PASS') { $_.Result = 'info' }; $_ }
}

function Get-QueueMethodNotes {
    $values = @{
        Repetitions = $script:Repetitions; Prefetch = $script:QueuePrefetch
        Pika = $script:PikaVersion; Broker = $script:BrokerVersion
    }
    foreach ($key in $script:QueueCounts.Keys) {
        $values[$key] = ([int]$script:QueueCounts[$key]).ToString('N0', $script:Invariant)
    }
    $text = @'
Rows 13-14, **RabbitMQ queue** (issue 10). The rows start their own broker for the run (Debian's
rabbitmq-server <<Broker>>, through build/RabbitMqBroker.psm1 as the tests do: its own ports, data
directory, cookie and epmd, on 127.0.0.1) and stop it afterwards. The broker shares the machine's cores
with the producer and the consumer. Each run uses a fresh durable queue; PsIpc and the anchor take turns
run by run.

- The traffic: <<QueueConfirmed>> (with confirms) or <<QueueUnconfirmed>> (without) 16-byte text
  messages, persistent (delivery mode 2), content type text/plain; charset=utf-8, to the default exchange
  with the queue's name as routing key. One producer process publishes them all while no consumer runs,
  then one consumer process takes them all: the publish and consume figures do not compete for the
  cores, and every message is counted on arrival.
- Row 13, **publish**, timed by the producer from connected to closed (the last confirm and the
  connection's close included). PsIpc (bench/workers/PsIpcQueueProducer.ps1): a pwsh builds its strings,
  runs `Connect-IpcQueue -Uri $uri -Queue $name` (with `-NoConfirm` for the unconfirmed line), then
  `$data | Send-IpcMessage $q` (with confirms it returns once the broker confirmed every message; at most
  -MaxUnconfirmed, 256 by default, wait for their confirm at a time) and `Close-IpcChannel $q`. Anchor
  (bench/anchors/amqp_pika.py `produce`, <<Pika>>): `pika.BlockingConnection`, `confirm_delivery()` or
  not, `basic_publish` per message (with confirms on, each returns once its message is confirmed: pika's
  blocking API has no window), `connection.close()`. Ceiling (bench/RawAmqp, net10.0, Release): the
  client PsIpc uses, RabbitMQ.Client 7.2.2, from C# without PowerShell: an awaited `BasicPublishAsync` per
  message, with confirms the client's own tracking with 256 publishes in flight, then `CloseAsync`; its
  queue is drained by the PsIpc consumer. When PsIpc, pika and this line are close together, the broker
  (which shares the cores) sets the pace, not the client.
- The "producer CPU" and "consumer CPU" lines are the process's CPU time (user + system, all threads, so
  the client's I/O threads and the garbage collector count) over the timed span, per message: what each
  client costs whichever side waited for the other. A fresh process pays its JIT compilation there too.
- The "broker CPU" and "machine busy" lines: the CPU time of the broker's Erlang VM (beam.smp, read from
  /proc) while that producer process ran (its start-up included, while the broker idles), per message, and
  the share of all the machine's cores busy meanwhile (every process, the other helpers' included). When
  the C# line spends a few µs per message of its own, publishes no faster than the others, and the
  broker spends more per message than pika's whole client, the broker sets the pace: on two cores a
  producer cannot publish faster than two cores divided by the broker's and its own CPU per message.
  The target line "what a client costing no CPU could reach" is (broker + pika CPU) / broker CPU, from the
  pika run: below 2.00x, no client, however cheap, publishes twice as fast as pika on these cores. The
  three producers hand the broker the same work per message (AMQP 0-9-1 has no batch publish, and
  RabbitMQ.Client 7.2.2 writes each publish on its own); PsIpc's sends to a queue are mandatory (a
  missing queue is reported), pika's are not, which costs the broker a little more for PsIpc, not less.
- Row 14, **consume with acks**, the consumer of the unconfirmed runs, taking <<QueueUnconfirmed>> messages
  from a full queue, timed from the first message taken to the last, prefetch <<Prefetch>> on both sides.
  PsIpc (bench/workers/PsIpcQueueConsumer.ps1): `Connect-IpcQueue` with its default -Prefetch, then
  `Receive-IpcMessage $q -Count $n | Measure-BenchStream`; each message is acknowledged after it was written
  to the pipeline (the channel batches acknowledgements with multiple=true). Anchor (`consume`):
  `basic_qos(prefetch_count=<<Prefetch>>)`, `basic_consume` with auto_ack off and a callback that calls
  `basic_ack` for each message, `start_consuming()`.
'@
    foreach ($key in $values.Keys) {
        $text = $text.Replace("<<$key>>", [string]$values[$key])
    }
    $text
}
