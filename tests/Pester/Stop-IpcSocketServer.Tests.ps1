BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Stop-IpcSocketServer' {
    AfterEach {
        Clear-TestState
    }

    It 'closes the clients, frees the port and unregisters the server; pipeline input and names work' {
        $srv = Start-IpcSocketServer
        $port = $srv.Port
        $c = Connect-IpcSocket -Port $port -TimeoutSeconds 5
        $srv.Name | Stop-IpcSocketServer
        $srv.State | Should -Be 'Closed'
        Receive-IpcMessage $c -TimeoutSeconds 5 | Should -BeNullOrEmpty   # ends: goodbye
        @(Get-IpcSocketServer).Count | Should -Be 0
        $again = Start-IpcSocketServer -Port $port
        $again.Port | Should -Be $port
        Get-IpcSocketServer | Stop-IpcSocketServer
    }

    It 'lets a running handler finish and deliver its reply' {
        $srv = Start-IpcSocketServer -ScriptBlock { param($m) Start-Sleep -Milliseconds 500; "done $m" }
        $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
        Send-IpcMessage $c 'slow'
        Wait-Until { $srv.Handler.Busy -eq 1 } | Should -BeTrue
        Stop-IpcSocketServer $srv -TimeoutSeconds 10
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'done slow'
    }

    It 'does nothing with -WhatIf' {
        $srv = Start-IpcSocketServer
        Stop-IpcSocketServer $srv -WhatIf
        $srv.State | Should -Be 'Listening'
    }
}
