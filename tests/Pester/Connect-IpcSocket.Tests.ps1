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
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        $err = { Connect-IpcSocket -Port $port -TimeoutSeconds 10 } | Should -Throw -ErrorId 'ConnectionRefused,PsIpc.Commands.ConnectIpcSocketCommand' -PassThru
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
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
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            $c = Connect-IpcSocket -Port $listener.LocalEndpoint.Port -TimeoutSeconds 1 -ErrorAction SilentlyContinue -ErrorVariable errs
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
            $c | Should -BeNullOrEmpty
            $errs[0].FullyQualifiedErrorId | Should -Be 'ConnectTimeout,PsIpc.Commands.ConnectIpcSocketCommand'
            $errs[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        }
        finally { $listener.Stop() }
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
