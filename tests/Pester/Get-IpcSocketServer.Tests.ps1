BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Get-IpcSocketServer' {
    AfterEach {
        Clear-TestState
    }

    It 'lists the socket servers of this process, not other channels' {
        $a = Start-IpcSocketServer
        $b = Start-IpcSocketServer -Framing Line
        $pipe = New-IpcPipe
        $all = @(Get-IpcSocketServer)
        $all.Count | Should -Be 2
        $all | Should -Contain $a
        $all | Should -Contain $b
        Get-IpcSocketServer -Name $a.Name | Should -Be $a
        Get-IpcSocketServer -Name "*:$($b.Port)" | Should -Be $b
    }

    It 'writes SocketServerNotFound for a name without wildcards that matches nothing' {
        Get-IpcSocketServer -Name 'tcp:127.0.0.1:1' -ErrorAction SilentlyContinue -ErrorVariable errs | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -Be 'SocketServerNotFound,PsIpc.Commands.GetIpcSocketServerCommand'
    }

    It 'shows servers in the one channel table, and their own counters in the PsIpc.SocketServer view' {
        $srv = Start-IpcSocketServer -ScriptBlock { param($m) $m }
        $text = Get-IpcSocketServer | Out-String -Width 200
        $text | Should -Match 'Name\s+Kind\s+Role\s+State\s+Peers\s+Sent\s+Received\s+Errors\s+LastActivity\s+Address'
        $text = $srv | Format-Table -View PsIpc.SocketServer | Out-String -Width 200
        $text | Should -Match 'Accepted\s+Refused\s+In\s+Out\s+Errors\s+HandlerErrors\s+Handler'
        $text | Should -Match ([regex]::Escape($srv.Address))
    }
}
