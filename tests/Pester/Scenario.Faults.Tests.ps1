<#
    Fault injection across processes (issue 13, item 2): for pipes, TCP and Unix sockets and the shared
    memory queue, 100 trials each of a sender, a receiver or a server (where there is one) killed with
    kill -9 (SIGKILL) at a random moment of a stream, counted.

    The processes: pwsh starts in seconds on these machines, so 1100 trials of it would take most of an
    hour. The trials are run by tests/PsIpc.FaultPeer, a small C# program over the transport core that the
    cmdlets are thin wrappers of (a cmdlet's error id is the IpcErrorKind name, src/PsIpc/ErrorMapping.cs):
    one long-lived driver process is the survivor of every trial and starts the peer that it kills as a
    process of its own, several trials at a time. Each trial: the peer connects (or listens), the stream
    flows, the peer is killed 0-100 ms later, the survivor goes on until its stream ends, then the ends are
    closed and the names are reused. The messages carry their number and bytes derived from it, so a
    duplicate, a gap, a reordering or damage shows.

    What "acknowledged" means (docs/security.md, "Delivery guarantees"):
    - pipes and sockets: Flush returned, i.e. every frame up to that message was written to the system.
      No acknowledgement crosses the connection. A killed SENDER's acknowledged messages must all arrive
      (the system delivers what was written before the process died). A killed RECEIVER loses what was in
      flight (buffers, its own hands): counted as lost-rcv, allowed.
    - the shared memory queue: Send returned, i.e. the record is in the ring. A killed sender's records all
      arrive; a killed consumer loses at most the batch it had taken and not processed (16 here, its
      Receive maximum); everything else stays for the next consumer.

    The survivor must return within its timeout: with an error whose id is one of the module's
    (PeerDisconnected, SendTimeout, FlushTimeout, ReceiveTimeout), or with the end of the stream that
    docs/protocol.md section 6 defines for a peer that vanished at a frame boundary ("everything it sent
    arrived"; nothing is lost, so nothing is reported). Hung (no end 30 s after the kill) fails the test.
    After cleanup no socket file or /dev/shm entry of the run may be left.
#>

BeforeDiscovery {
    $Combinations = @(
        foreach ($transport in 'pipe', 'tcp', 'unix') {
            foreach ($role in 'sender', 'receiver', 'server') { @{ Transport = $transport; Role = $role } }
        }
        @{ Transport = 'queue'; Role = 'sender' }
        @{ Transport = 'queue'; Role = 'receiver' }
    )
}

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    $script:Trials = 100
    $script:RunPrefix = 'psft{0}-' -f [guid]::NewGuid().ToString('N').Substring(0, 6)
    $script:WorkDir = Join-Path ([System.IO.Path]::GetTempPath()) $script:RunPrefix.TrimEnd('-')
    $null = New-Item -ItemType Directory -Path $script:WorkDir
    & chmod 700 $script:WorkDir

    $peerOut = Join-Path ([System.IO.Path]::GetTempPath()) "$($script:RunPrefix)bin"
    $build = & dotnet build (Join-Path $RepoRoot 'tests/PsIpc.FaultPeer') -c Release -o $peerOut -nologo 2>&1
    if ($LASTEXITCODE -ne 0) { throw "tests/PsIpc.FaultPeer does not build: $($build -join "`n")" }
    $script:PeerBin = $peerOut

    # Four trials per core at a time: most of a trial is waiting (a process starting, a stream, a kill, a timeout).
    $parallel = [Math]::Max(4, [Math]::Min(16, 4 * [Environment]::ProcessorCount))
    # The same rows as $Combinations of BeforeDiscovery (discovery's variables do not reach this phase).
    $combos = 'pipe:sender,pipe:receiver,pipe:server,tcp:sender,tcp:receiver,tcp:server,unix:sender,unix:receiver,unix:server,queue:sender,queue:receiver'
    $report = Join-Path $peerOut 'report.json'
    $psi = [System.Diagnostics.ProcessStartInfo]::new((Join-Path $peerOut 'PsIpc.FaultPeer'))
    foreach ($a in 'drive', $report, $script:Trials, $parallel, $script:RunPrefix, $script:WorkDir, $combos) { $psi.ArgumentList.Add([string]$a) }
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $driver = [System.Diagnostics.Process]::Start($psi) | Register-TestProcess
    $stderr = $driver.StandardError.ReadToEndAsync()
    $table = $driver.StandardOutput.ReadToEndAsync()
    # A safety net for the whole run, far above what it takes (a few minutes on 2 cores).
    if (-not $driver.WaitForExit(45 * 60 * 1000)) { throw 'The fault driver did not finish within 45 minutes.' }
    $driver.WaitForExit()
    if ($driver.ExitCode -ne 0) { throw "The fault driver failed ($($driver.ExitCode)): $($stderr.Result)" }
    $script:Report = Get-Content -LiteralPath $report -Raw | ConvertFrom-Json
    $script:ModuleIds = [enum]::GetNames([PsIpc.Transport.IpcErrorKind])

    Write-Host "kill -9 trials: $($script:Trials) per row, $parallel at a time, $($script:Report.Seconds) s"
    Write-Host "(acked: messages the sender saw acknowledged; lost-ack: of those, not received (must be 0);"
    Write-Host " lost-rcv: accepted messages that died with a killed receiver, which the guarantee allows)"
    Write-Host $table.Result

    function Get-Row {
        param([string] $Transport, [string] $Role)
        $script:Report.Summaries | Where-Object { $_.Transport -eq $Transport -and $_.Role -eq $Role }
    }
}

AfterAll {
    Clear-TestState
    if ($script:WorkDir) { Remove-Item -LiteralPath $script:WorkDir -Recurse -Force -ErrorAction SilentlyContinue }
    if ($script:PeerBin) { Remove-Item -LiteralPath $script:PeerBin -Recurse -Force -ErrorAction SilentlyContinue }
}

Describe 'A <Role> of the <Transport> transport killed with kill -9 at a random moment of a stream' -ForEach $Combinations {
    BeforeAll {
        $row = Get-Row -Transport $Transport -Role $Role
        if (-not $row) { throw "The fault driver reported nothing for $Transport $Role." }
        $victimSends = $Role -eq 'sender'
        $victimReceives = $Role -eq 'receiver'
        if ($Role -eq 'server') { $victimSends = $victimReceives = $true }   # even trials it sends, odd ones it receives
        $allowed = @(
            if ($Transport -eq 'queue') {
                if ($victimSends) { 'ReceiveTimeout' }    # a queue has no peer to lose: the reader's wait ends at its deadline
                if ($victimReceives) { 'SendTimeout' }    # nobody takes records any more: the ring fills up
            }
            else {
                if ($victimSends) { 'PeerDisconnected', 'EndOfStream' }
                if ($victimReceives) { 'PeerDisconnected', 'SendTimeout', 'FlushTimeout' }
            }
        )
    }

    It 'ran every trial, each ending in a documented way' {
        $row.Trials | Should -Be $Trials
        $row.Violations | Should -BeNullOrEmpty
        $row.ViolationCount | Should -Be 0
        $outcomes = @($row.Outcomes.PSObject.Properties.Name)
        foreach ($outcome in $outcomes) {
            $outcome | Should -BeIn $allowed -Because "every survivor ends within its timeout with one of these (got: $(($row.Outcomes.PSObject.Properties | ForEach-Object { "$($_.Name) $($_.Value)" }) -join ', '))"
            if ($outcome -ne 'EndOfStream') { $outcome | Should -BeIn $ModuleIds -Because 'an error a survivor reports carries a module error id' }
        }
    }

    It 'loses nothing that was acknowledged, and duplicates or damages nothing' {
        $row.Acknowledged | Should -BeGreaterThan 0 -Because 'the streams flowed before the kills'
        $row.LostAcknowledged | Should -Be 0
        $row.Duplicates | Should -Be 0
        $row.Damaged | Should -Be 0
        if ($Role -eq 'sender') {
            $row.LostWithReceiver | Should -Be 0 -Because 'only a killed receiver takes messages with it'
            $row.Received | Should -BeGreaterOrEqual $row.Acknowledged
        }
        if ($Transport -eq 'queue' -and $Role -eq 'receiver') {
            $row.LostWithReceiver | Should -BeLessOrEqual (16 * $Trials) -Because 'a killed consumer loses at most the batch it had taken'
        }
    }

    It 'leaves no socket file or shared memory file behind' {
        $row.Orphans | Should -BeNullOrEmpty
    }
}

Describe 'After every trial' {
    It 'nothing of the run is left in the temporary directory or /dev/shm' {
        $Report.LeftBehind | Should -BeNullOrEmpty
        # Looked at from this process too, not only from the driver's.
        @(Get-ChildItem -LiteralPath ([System.IO.Path]::GetTempPath()) -Filter "CoreFxPipe_$RunPrefix*" -Force) | Should -BeNullOrEmpty
        @(Get-ChildItem -LiteralPath $WorkDir -Force) | Should -BeNullOrEmpty
        @(Get-SharedMemory -Name "$RunPrefix*") | Should -BeNullOrEmpty
    }
}
