BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Get-IpcChannel' {
    BeforeEach {
        $prefix = 'psipctget' + [guid]::NewGuid().ToString('N').Substring(0, 6)
    }

    AfterEach {
        Clear-TestState
    }

    It 'lists the channels open in this process' {
        $server = New-IpcPipe -Name "$prefix-server"
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        $all = @(Get-IpcChannel)

        $all | Should -Contain $server
        $all | Should -Contain $client
        ($all | Where-Object Name -EQ $server.Name).Role | ForEach-Object ToString | Sort-Object | Should -Be @('Client', 'Server')
        $all | ForEach-Object { $_ | Should -BeOfType ([PsIpc.Transport.Channels.IpcChannel]) }
    }

    It 'lists nothing of a channel after it closed' {
        $server = New-IpcPipe -Name "$prefix-gone"
        Close-IpcChannel -Channel $server
        @(Get-IpcChannel) | Should -Not -Contain $server
        Get-IpcChannel -Name "$prefix-*" | Should -BeNullOrEmpty
    }

    It 'filters by wildcard, case-insensitively' {
        $a1 = New-IpcPipe -Name "$prefix-a1"
        $a2 = New-IpcPipe -Name "$prefix-a2"
        $b1 = New-IpcPipe -Name "$prefix-b1"

        (Get-IpcChannel -Name "$prefix-a*").Name | Sort-Object | Should -Be @("$prefix-a1", "$prefix-a2")
        (Get-IpcChannel "$prefix-?1").Name | Sort-Object | Should -Be @("$prefix-a1", "$prefix-b1")
        (Get-IpcChannel -Name "$prefix-B*".ToUpperInvariant()).Name | Should -Be "$prefix-b1"
        (Get-IpcChannel -Name "$prefix-*").Count | Should -Be 3
    }

    It 'finds a channel by its exact name, and takes several names, also from the pipeline' {
        $a = New-IpcPipe -Name "$prefix-a"
        $b = New-IpcPipe -Name "$prefix-b"
        Get-IpcChannel -Name "$prefix-a" | Should -Be $a
        (Get-IpcChannel -Name "$prefix-a", "$prefix-b").Name | Should -Be @("$prefix-a", "$prefix-b")
        ("$prefix-b", "$prefix-a" | Get-IpcChannel).Name | Should -Be @("$prefix-b", "$prefix-a")
    }

    It 'writes ChannelNotFound for a name without wildcards that matches nothing, and goes on' {
        $a = New-IpcPipe -Name "$prefix-a"
        $found = Get-IpcChannel -Name "$prefix-missing", "$prefix-a" -ErrorAction SilentlyContinue -ErrorVariable errors

        $found | Should -Be $a
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'ChannelNotFound,PsIpc.Commands.GetIpcChannelCommand'
        $errors[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $errors[0].TargetObject | Should -Be "$prefix-missing"
        { Get-IpcChannel -Name "$prefix-missing" -ErrorAction Stop } | Should -Throw -ErrorId 'ChannelNotFound,PsIpc.Commands.GetIpcChannelCommand'
    }

    It 'writes no error for a wildcard that matches nothing' {
        $found = Get-IpcChannel -Name "$prefix-nothing*" -ErrorVariable errors
        $found | Should -BeNullOrEmpty
        $errors.Count | Should -Be 0
    }

    It 'lists the channels of every runspace of the process, until that runspace closes' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                    param($ModulePath, $Name)
                    Import-Module $ModulePath
                    $null = New-IpcPipe -Name $Name
                }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument("$prefix-other-runspace")
            $null = $ps.Invoke()
            $ps.HadErrors | Should -BeFalse

            $found = Get-IpcChannel -Name "$prefix-other-runspace"
            $found.Name | Should -Be "$prefix-other-runspace"
            $found.Role | Should -Be 'Server'
            # And it can be used here.
            $client = New-IpcPipe -Name "$prefix-other-runspace" -Connect -TimeoutSeconds 5
            'across runspaces' | Send-IpcMessage -Channel $client
            Receive-IpcMessage -Channel $found -Count 1 -TimeoutSeconds 5 | Should -Be 'across runspaces'
        }
        finally {
            $ps.Dispose()
        }
        # A channel lives as long as the runspace that created it.
        $found.IsClosed | Should -BeTrue
        Get-IpcChannel -Name "$prefix-other-runspace" | Where-Object Role -EQ 'Server' | Should -BeNullOrEmpty
        Receive-IpcMessage -Channel $client -TimeoutSeconds 10 -ErrorVariable errors | Should -BeNullOrEmpty
        $errors.Count | Should -Be 0 -Because 'the client sees the end of the stream'
    }

    It 'shows state, peers and counters' {
        $server = New-IpcPipe -Name "$prefix-counters"
        (Get-IpcChannel -Name $server.Name).State | Should -Be 'Listening'
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        'a', 'bc' | Send-IpcMessage -Channel $client
        $null = Receive-IpcMessage -Channel $server -Count 2 -TimeoutSeconds 5

        $listed = Get-IpcChannel -Name $server.Name | Where-Object Role -EQ 'Server'
        $listed.State | Should -Be 'Connected'
        $listed.PeerCount | Should -Be 1
        $listed.MessagesReceived | Should -Be 2
        $listed.BytesReceived | Should -Be 3
        $sent = Get-IpcChannel -Name $server.Name | Where-Object Role -EQ 'Client'
        $sent.MessagesSent | Should -Be 2
        $sent.BytesSent | Should -Be 3
    }

    It 'formats channels as a table with Name, Kind, Role and State' {
        $server = New-IpcPipe -Name "$prefix-table"
        $text = Get-IpcChannel -Name $server.Name | Format-Table | Out-String -Width 300
        $text | Should -Match 'Name\s+Kind\s+Role\s+State'
        $text | Should -Match ([regex]::Escape($server.Name) + '\s+Pipe\s+Server\s+Listening')
    }

    It 'completes -Name with the open channel names' {
        $a = New-IpcPipe -Name "$prefix-x"
        $b = New-IpcPipe -Name "$prefix-y"
        $line = "Get-IpcChannel -Name $prefix"
        $result = TabExpansion2 -inputScript $line -cursorColumn $line.Length
        $result.CompletionMatches.CompletionText | Sort-Object | Should -Be @("$prefix-x", "$prefix-y")
    }
}
