BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Close-IpcChannel' {
    AfterEach {
        Clear-TestState
    }

    It 'closes the channels given on the pipeline' {
        $a = New-IpcPipe -Name (New-TestPipeName)
        $b = New-IpcPipe -Name (New-TestPipeName)
        $a, $b | Close-IpcChannel

        $a.IsClosed | Should -BeTrue
        $b.IsClosed | Should -BeTrue
        $a.State | Should -Be 'Closed'
        (Get-IpcChannel).Name | Should -Not -Contain $a.Name
        (Get-IpcChannel).Name | Should -Not -Contain $b.Name
    }

    It 'closes an array given to -Channel' {
        $a = New-IpcPipe -Name (New-TestPipeName)
        $b = New-IpcPipe -Name (New-TestPipeName)
        Close-IpcChannel -Channel @($a, $b)
        $a.IsClosed | Should -BeTrue
        $b.IsClosed | Should -BeTrue
    }

    It 'closes a channel given by name, also from the pipeline' {
        $a = New-IpcPipe -Name (New-TestPipeName)
        $b = New-IpcPipe -Name (New-TestPipeName)
        $c = New-IpcPipe -Name (New-TestPipeName)
        Close-IpcChannel -Channel $a.Name
        $b.Name, $c.Name | Close-IpcChannel

        $a.IsClosed | Should -BeTrue
        $b.IsClosed | Should -BeTrue
        $c.IsClosed | Should -BeTrue
    }

    It 'closes what Get-IpcChannel finds' {
        $prefix = 'psipctclose' + [guid]::NewGuid().ToString('N').Substring(0, 6)
        $a = New-IpcPipe -Name "$prefix-1"
        $b = New-IpcPipe -Name "$prefix-2"
        $keep = New-IpcPipe -Name (New-TestPipeName)
        Get-IpcChannel -Name "$prefix-*" | Close-IpcChannel

        $a.IsClosed | Should -BeTrue
        $b.IsClosed | Should -BeTrue
        $keep.IsClosed | Should -BeFalse
        Get-IpcChannel -Name "$prefix-*" | Should -BeNullOrEmpty
    }

    It 'is idempotent: closing a closed channel again is quiet' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        Close-IpcChannel -Channel $server
        { Close-IpcChannel -Channel $server -ErrorAction Stop } | Should -Not -Throw
        { $server, $server | Close-IpcChannel -ErrorAction Stop } | Should -Not -Throw
        $server.IsClosed | Should -BeTrue
    }

    It 'removes the socket file of a server' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $path = $server.Address
        Test-Path -LiteralPath $path | Should -BeTrue
        Close-IpcChannel -Channel $server
        Test-Path -LiteralPath $path | Should -BeFalse
        # The name is free again.
        $again = New-IpcPipe -Name $server.Name
        $again.State | Should -Be 'Listening'
    }

    It 'leaves the server socket file alone when a client closes' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        Close-IpcChannel -Channel $client
        Test-Path -LiteralPath $server.Address | Should -BeTrue
        $server.IsClosed | Should -BeFalse
    }

    It 'flushes what was sent before it says goodbye' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        [string[]](1..2000) | Send-IpcMessage -Channel $client
        Close-IpcChannel -Channel $client

        $got = Receive-IpcMessage -Channel $server -TimeoutSeconds 20 -ErrorVariable errors
        $got.Count | Should -Be 2000
        $got[0] | Should -Be '1'
        $got[-1] | Should -Be '2000'
        $errors.Count | Should -Be 0
    }

    It "a server's close ends its clients' Receive cleanly" {
        $server = New-IpcPipe -Name (New-TestPipeName) -MaxClients 2
        $one = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        $two = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        Wait-Until { $server.PeerCount -eq 2 } | Should -BeTrue
        'last words' | Send-IpcMessage -Channel $server
        Close-IpcChannel -Channel $server

        foreach ($client in $one, $two) {
            $got = Receive-IpcMessage -Channel $client -TimeoutSeconds 10 -ErrorVariable errors
            $got | Should -Be 'last words'
            $errors.Count | Should -Be 0
            $client.State | Should -Be 'Closed'
        }
    }

    It 'closing a Sender (a peer) disconnects that client only' {
        $server = New-IpcPipe -Name (New-TestPipeName) -MaxClients 2
        $one = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        $two = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        'from one' | Send-IpcMessage -Channel $one
        $envelope = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 -Envelope
        Close-IpcChannel -Channel $envelope.Sender

        Receive-IpcMessage -Channel $one -TimeoutSeconds 10 -ErrorVariable errors | Should -BeNullOrEmpty
        $errors.Count | Should -Be 0
        $one.State | Should -Be 'Closed'
        $two.State | Should -Be 'Connected'
        $server.IsClosed | Should -BeFalse
        'two still talks' | Send-IpcMessage -Channel $two
        Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'two still talks'
    }

    It 'ends a Receive that waits on the channel in another runspace' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                    param($ModulePath, $Channel)
                    Import-Module $ModulePath
                    Receive-IpcMessage -Channel $Channel
                    'receive ended'
                }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($server)
            $handle = $ps.BeginInvoke()
            # Close only once the Receive waits (Running is true already while Import-Module runs).
            Wait-Until { $server.Waiters -eq 1 -or $handle.IsCompleted } -TimeoutSeconds 60 | Should -BeTrue
            $handle.IsCompleted | Should -BeFalse -Because 'Receive-IpcMessage waits for a message'
            Close-IpcChannel -Channel $server
            $handle.AsyncWaitHandle.WaitOne(60000) | Should -BeTrue -Because 'the close ends the wait (60 s is a safety net)'
            $ps.EndInvoke($handle) | Should -Be 'receive ended'
            $server.Waiters | Should -Be 0
        }
        finally {
            $ps.Dispose()
        }
    }

    It 'gives up on a peer that does not read after -TimeoutSeconds' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        $chunk = [byte[]]::new(1MB)
        # More than the server's receive buffer, the sockets and the client's send buffer hold: the send
        # times out, and some messages stay in the client's send queue.
        $count = [Math]::Ceiling(($server.Options.ReceiveBufferBytes + $client.Options.SendBufferBytes) / 1MB) + 4
        $err = { 1..$count | ForEach-Object { , $chunk } | Send-IpcMessage -Channel $client -TimeoutSeconds 1 -ErrorAction Stop } |
            Should -Throw -ErrorId 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand' -PassThru
        # The server never reads: Close-IpcChannel returning at all is the proof that it gave up at its deadline.
        Close-IpcChannel -Channel $client -TimeoutSeconds 1
        $client.IsClosed | Should -BeTrue
    }

    It 'returns at once on Ctrl+C while it waits for a peer that does not read' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        $chunk = [byte[]]::new(1MB)
        # Both buffers, the kernel's (1 MiB each way) and a frame being parsed: 8 MiB more make sure one send waits.
        $count = [Math]::Ceiling(($server.Options.ReceiveBufferBytes + $client.Options.SendBufferBytes) / 1MB) + 8
        { 1..$count | ForEach-Object { , $chunk } | Send-IpcMessage -Channel $client -TimeoutSeconds 1 -ErrorAction Stop } |
            Should -Throw -ErrorId 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand'
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({ param($ModulePath, $Channel) Import-Module $ModulePath; Close-IpcChannel -Channel $Channel }).
                AddArgument($env:PSIPC_MODULE_PATH).AddArgument($client)
            # Close waits up to 30 s for the queue to drain: Ctrl+C once it waits.
            $stop = Stop-WhenWaiting -PowerShell $ps -Channel $client
            $stop.State | Should -Be 'Stopped'
            $stop.Waiters | Should -Be 0 -Because 'Close-IpcChannel no longer waits'
            $client.IsClosed | Should -BeTrue -Because 'the close goes on in the background'
        }
        finally {
            $ps.Dispose()
        }
    }

    It 'rejects an unknown name while binding -Channel' {
        $err = { Close-IpcChannel -Channel 'no-such-channel-here' } |
            Should -Throw -ErrorId 'ParameterArgumentTransformationError,PsIpc.Commands.CloseIpcChannelCommand' -PassThru
        $err.Exception.Message | Should -BeLike "*No open channel is named 'no-such-channel-here'*"
    }

    It 'rejects $null' {
        { Close-IpcChannel -Channel $null } | Should -Throw -ErrorId 'ParameterArgumentValidationError,PsIpc.Commands.CloseIpcChannelCommand'
    }
}
