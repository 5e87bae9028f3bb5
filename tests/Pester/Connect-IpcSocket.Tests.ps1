BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Connect-IpcSocket' {
    AfterEach {
        Clear-TestState
    }

    It 'connects to a server by port and completes the PsIpc handshake' {
        $srv = Start-IpcSocketServer
        $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
        $c | Should -BeOfType ([PsIpc.Transport.Sockets.SocketClientChannel])
        $c.Role | Should -Be 'Client'
        $c.State | Should -Be 'Connected'
        $c.PeerProcessId | Should -Be $PID
        $c.Name | Should -Be "tcp:localhost:$($srv.Port)"
        Get-IpcChannel -Name $c.Name | Should -Be $c
    }

    It 'fails at once with ConnectionRefused when nothing listens on the port' {
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $probe.Start(); $port = $probe.LocalEndpoint.Port; $probe.Stop()
        # ConnectionRefused, not ConnectTimeout at the deadline: the refusal ends the connect, nothing retries.
        $err = { Connect-IpcSocket -Port $port -TimeoutSeconds 120 } | Should -Throw -ErrorId 'ConnectionRefused,PsIpc.Commands.ConnectIpcSocketCommand' -PassThru
        $err.CategoryInfo.Category | Should -Be 'ConnectionError'
    }

    It 'fails with ConnectionRefused for a Unix socket nobody serves' {
        { Connect-IpcSocket -Path (Join-Path ([System.IO.Path]::GetTempPath()) 'psipc-nobody.sock') } |
            Should -Throw -ErrorId 'ConnectionRefused,PsIpc.Commands.ConnectIpcSocketCommand'
    }

    It 'times out (ConnectTimeout, non-terminating) when the server does not answer the handshake' {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start()   # accepts in the kernel, never speaks
        try {
            $c = Connect-IpcSocket -Port $listener.LocalEndpoint.Port -TimeoutSeconds 1 -ErrorAction SilentlyContinue -ErrorVariable errs
            $c | Should -BeNullOrEmpty
            $errs[0].FullyQualifiedErrorId | Should -Be 'ConnectTimeout,PsIpc.Commands.ConnectIpcSocketCommand'
            $errs[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        }
        finally { $listener.Stop() }
    }

    It 'stops waiting for the server''s handshake on PowerShell.Stop() (Ctrl+C)' {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start()   # accepts in the kernel, never speaks: the connect waits for the handshake
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                    param($ModulePath, $Port)
                    Import-Module $ModulePath
                    Connect-IpcSocket -Port $Port -TimeoutSeconds 600
                }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($listener.LocalEndpoint.Port)
            $stop = Stop-WhenWaiting -PowerShell $ps
            $stop.State | Should -Be 'Stopped'
            $stop.Waiters | Should -Be 0 -Because 'the connect no longer waits'
            @($stop.Output) | Should -BeNullOrEmpty -Because 'a stopped connect returns no channel'
            @(Get-IpcChannel | Where-Object Name -Like "tcp:*:$($listener.LocalEndpoint.Port)") | Should -BeNullOrEmpty
        }
        finally {
            $ps.Dispose()
            $listener.Stop()
        }
    }

    It 'fails with HostNotFound for a name that does not resolve' {
        { Connect-IpcSocket -ComputerName 'no-such-host.invalid' -Port 1 -TimeoutSeconds 5 } |
            Should -Throw -ErrorId 'HostNotFound,PsIpc.Commands.ConnectIpcSocketCommand'
    }

    It 'sees the end of the stream when the server stops' {
        $srv = Start-IpcSocketServer
        $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
        Send-IpcMessage $srv 'last words'
        Stop-IpcSocketServer $srv
        Receive-IpcMessage $c -TimeoutSeconds 5 | Should -Be 'last words'   # then ends: the server said goodbye
        $c.State | Should -Be 'Closed'
    }
}
