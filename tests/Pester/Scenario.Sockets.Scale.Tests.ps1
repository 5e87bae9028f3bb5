BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    function Get-ThreadCount {
        # This process's threads: /proc/self/status on Linux (cheap with thousands of threads), else the Process object.
        if (Test-Path /proc/self/status) {
            return [int]([regex]::Match([IO.File]::ReadAllText('/proc/self/status'), '(?m)^Threads:\s*(\d+)').Groups[1].Value)
        }
        [System.Diagnostics.Process]::GetCurrentProcess().Threads.Count
    }
}

AfterAll {
    Clear-TestState
}

# Issue 12, item 4: a server's threads do not grow with its clients. Beyond its first 16 connections (which read on
# threads of their own) a server's connections read and write on the thread pool. 1,500 clients here (10,000 in
# Bench, row 16); with a reader and a writer thread per connection, as before, this process would have 3,000 more.
Describe 'Socket server at scale (issue 12, item 4)' -Skip:(-not (Get-Command python3 -CommandType Application -ErrorAction SilentlyContinue)) {
    AfterEach {
        Clear-TestState
    }

    It 'holds 1,500 python3 clients (active, slow and idle) of one script-block server: every reply right, no error, at most 80 threads more' {
        $clientCount = 1500
        $rounds = 3
        $idlePercent = 20
        $slowPercent = 5
        $threadsBefore = Get-ThreadCount
        $srv = Start-IpcSocketServer -Port 0 -MaxConnections ($clientCount + 50) -ScriptBlock { param($m) "ACK: $m" }

        # The peer raises its own soft limit of open files to the hard limit (1,500 sockets; a .NET process does so itself).
        $psi = [System.Diagnostics.ProcessStartInfo]::new((Get-Command python3 -CommandType Application | Select-Object -First 1).Source)
        foreach ($a in @('-u', (Join-Path $PSScriptRoot 'scale_clients.py'), $srv.Port, $clientCount, $rounds, $idlePercent, $slowPercent)) {
            $psi.ArgumentList.Add([string]$a)
        }
        $psi.UseShellExecute = $false
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $peer = [System.Diagnostics.Process]::Start($psi) | Register-TestProcess
        $stdout = $peer.StandardOutput.ReadToEndAsync()
        $stderr = $peer.StandardError.ReadToEndAsync()

        # Sample this process while the peer runs (its exit is the wait; 300 s is only a safety net).
        $peakThreads = $threadsBefore
        $mostClients = 0
        $clock = [System.Diagnostics.Stopwatch]::StartNew()
        while (-not $peer.WaitForExit(50)) {
            $peakThreads = [Math]::Max($peakThreads, (Get-ThreadCount))
            $mostClients = [Math]::Max($mostClients, $srv.ClientCount)
            if ($clock.Elapsed.TotalSeconds -gt 300) { break }
        }
        $peer.HasExited | Should -BeTrue -Because 'the peer finishes its round trips (300 s safety net)'
        $peer.WaitForExit()
        $stderr.Result | Should -BeNullOrEmpty
        $result = $stdout.Result | ConvertFrom-Json

        $idle = @(0..($clientCount - 1) | Where-Object { $_ % 100 -lt $idlePercent }).Count
        $result.firstError | Should -BeNullOrEmpty
        $result.errors | Should -Be 0
        $result.connected | Should -Be $clientCount
        $result.trips | Should -Be (($clientCount - $idle) * $rounds + $idle)
        $mostClients | Should -Be $clientCount -Because 'every client was connected at once'
        $srv.ConnectionsAccepted | Should -Be $clientCount
        $srv.ConnectionErrors | Should -Be 0
        $srv.ConnectionsRefused | Should -Be 0
        $srv.HandlerErrors | Should -Be 0
        Wait-Until { $srv.Handler.MessagesHandled -eq $result.trips } | Should -BeTrue
        Wait-Until { $srv.ClientCount -eq 0 } -TimeoutSeconds 30 | Should -BeTrue
        # 16 reader threads, the handler's 8 runspaces, the accept thread, and the thread pool, which the runtime grows
        # a little under load; measured: see docs/benchmarks.md row 16 for 10,000 clients.
        ($peakThreads - $threadsBefore) | Should -BeLessOrEqual 80 -Because "the server had $peakThreads threads at most, $threadsBefore before it started"
        Write-Host "    threads: $threadsBefore before the server, $peakThreads at most with $clientCount clients"
        Stop-IpcSocketServer $srv
    }
}
