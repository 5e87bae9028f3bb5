<#
    Output that reads well (issue 11, item 6): one channel table whatever kinds are open, options with their
    units, envelopes that convert to a few lines of JSON, and statistics with bytes, errors, drops and the
    last activity.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Channel output' {
    AfterEach {
        Clear-TestState
    }

    It 'Get-IpcChannel is one table with every kind, a socket server first' {
        $shmName = New-TestShmName
        $tcp = Start-IpcSocketServer -ScriptBlock { param($m) $m }   # once shown with a server table first
        $udp = Start-IpcSocketServer -Udp
        $pipe = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 10
        $queue = New-SharedMemory -Name $shmName -Size 64KB -Queue
        try {
            $null = $tcp | Out-String   # the server as Start-IpcSocketServer shows it, before the list
            $text = Get-IpcChannel | Out-String -Width 250
            @($text -split "`n" | Where-Object { $_ -match '^Name\s+Kind\s+Role\s+State\s+Peers\s+Sent\s+Received\s+Errors\s+LastActivity\s+Address' }).Count |
                Should -Be 1 -Because "one header for all kinds:`n$text"
            $text | Should -Not -Match '(?m)^\s*Name\s*:' -Because "no channel falls out of the table into a list:`n$text"
            foreach ($expected in @(@($tcp, 'Tcp'), @($udp, 'Udp'), @($pipe, 'Pipe'), @($client, 'Pipe'), @($queue, 'Memory'))) {
                $text | Should -Match ('(?m)^' + [regex]::Escape($expected[0].Name) + '\s+' + $expected[1] + '\s') -Because $text
            }
        }
        finally { $queue | Remove-SharedMemory }
    }

    It 'prints a channel''s options with their units' {
        $pipe = New-IpcPipe -Name (New-TestPipeName) -MaxMessageSize 1024
        $text = $pipe.Options | Out-String
        $text | Should -Match 'MaxMessageSize\s*:\s*1 KiB'
        $text | Should -Match 'SendBuffer\s*:\s*4 MiB'
        $text | Should -Match 'ReceiveBuffer\s*:\s*8 MiB or 65536 messages'
        $text | Should -Match 'IdleTimeout\s*:\s*5 min'
        $text | Should -Match 'CloseTimeout\s*:\s*30 s'
        # Inside a list of the channel, on one line.
        ($pipe | Format-List Options | Out-String -Width 300) | Should -Match 'Options\s*:\s*MaxMessageSize 1 KiB, SendBuffer 4 MiB'
    }

    It 'converts an envelope to a few lines of JSON: the sender and channel by name' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
        Send-IpcMessage $client 'hello'
        $envelope = Receive-IpcMessage $server -Count 1 -TimeoutSeconds 10 -Envelope
        $json = $envelope | ConvertTo-Json -WarningAction Stop
        @($json -split "`n").Count | Should -BeLessOrEqual 10 -Because $json
        $parsed = $json | ConvertFrom-Json
        $parsed.Body | Should -Be 'hello'
        $parsed.Sender | Should -BeExactly $envelope.Sender.Name
        $parsed.Sender | Should -BeLike "$($server.Name)#*"
        $parsed.Channel | Should -BeExactly $server.Name
        $parsed.SenderProcessId | Should -Be $PID
        $parsed.Format | Should -Be 'Text'
        # In PowerShell they are still the channels: a reply goes to the sender.
        $envelope.Sender | Should -BeOfType ([PsIpc.Transport.Channels.IpcPeer])
        $envelope.Channel | Should -Be $server
        Send-IpcMessage $envelope.Sender 'reply'
        Receive-IpcMessage $client -Count 1 -TimeoutSeconds 10 | Should -Be 'reply'
    }
}

Describe 'Channel statistics' {
    AfterEach {
        Clear-TestState
    }

    It 'count bytes both ways and the last activity' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
        $server.LastActivity | Should -BeNullOrEmpty
        $before = Get-Date
        'abc', 'de' | Send-IpcMessage $client
        $null = Receive-IpcMessage $server -Count 2 -TimeoutSeconds 10
        $stats = $server.Statistics
        $stats | Should -BeOfType ([PsIpc.Transport.Channels.ChannelStatistics])
        $stats.MessagesReceived | Should -Be 2
        $stats.BytesReceived | Should -Be 5
        $stats.LastReceivedAt | Should -BeGreaterOrEqual $before.AddSeconds(-1)
        $stats.LastActivity | Should -Be $stats.LastReceivedAt
        $client.Statistics.BytesSent | Should -Be 5
        $client.LastSentAt | Should -BeGreaterOrEqual $before.AddSeconds(-1)
        $text = Get-IpcChannel | Select-Object -ExpandProperty Statistics | Out-String -Width 200
        $text | Should -Match 'Name\s+Kind\s+Role\s+Sent\s+BytesSent\s+Received\s+BytesReceived\s+Errors\s+Dropped\s+LastActivity'
    }

    It 'count failed sends as errors' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        Send-IpcMessage $server 'nobody there' -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable failed
        $failed[0].FullyQualifiedErrorId | Should -Be 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand'
        $server.Errors | Should -Be 1
        $server.Statistics.Errors | Should -Be 1
    }

    It 'count a server''s failed connections as its errors' {
        $srv = Start-IpcSocketServer
        $raw = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $srv.Port)
        try {
            $stream = $raw.GetStream()
            $bytes = [System.Text.Encoding]::ASCII.GetBytes("GET / HTTP/1.1`r`nHost: x`r`n`r`n")
            $stream.Write($bytes, 0, $bytes.Length)
            Wait-Until { $srv.ConnectionErrors -ge 1 } | Should -BeTrue
            $srv.Errors | Should -Be $srv.ConnectionErrors
        }
        finally { $raw.Dispose() }
    }
}
