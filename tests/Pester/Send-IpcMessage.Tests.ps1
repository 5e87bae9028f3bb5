BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Send-IpcMessage' {
    AfterEach {
        Clear-TestState
    }

    Context 'Messages and formats' {
        BeforeEach {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        }

        It 'sends each pipeline item as one message' {
            'alpha', 'beta', 'gamma' | Send-IpcMessage -Channel $client
            $got = Receive-IpcMessage -Channel $server -Count 3 -TimeoutSeconds 5
            $got | Should -Be @('alpha', 'beta', 'gamma')
            $client.MessagesSent | Should -Be 3
            Receive-IpcMessage -Channel $server -TimeoutSeconds 0.3 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'sends an -InputObject array as one message' {
            Send-IpcMessage -Channel $client -InputObject @(1, 'two', 3.5)
            $got = @(Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5)
            $got.Count | Should -Be 1
            $items = @($got[0])
            $items.Count | Should -Be 3
            $items[0] | Should -Be 1
            $items[1] | Should -Be 'two'
            $items[2] | Should -Be 3.5
            $client.MessagesSent | Should -Be 1
        }

        It 'sends the positional second argument as one message' {
            Send-IpcMessage $client 'positional'
            Receive-IpcMessage $server -Count 1 -TimeoutSeconds 5 | Should -Be 'positional'
        }

        It 'sends strings as themselves (Text), the empty string and non-ASCII included' {
            $texts = @('', 'plain', "line1`nline2", 'Grüße, 世界 🚀', (' ' * 3))
            $texts | Send-IpcMessage -Channel $client
            $envelopes = @(Receive-IpcMessage -Channel $server -Count $texts.Count -TimeoutSeconds 5 -Envelope)
            $envelopes.Count | Should -Be $texts.Count
            for ($i = 0; $i -lt $texts.Count; $i++) {
                $envelopes[$i].Format | Should -Be 'Text'
                $envelopes[$i].Body | Should -BeOfType ([string])
                $envelopes[$i].Body | Should -BeExactly $texts[$i]
                $envelopes[$i].Size | Should -Be ([System.Text.Encoding]::UTF8.GetByteCount($texts[$i]))
            }
        }

        It 'sends a byte[] of <Length> bytes as itself, byte for byte' -ForEach @(
            @{ Length = 0 }
            @{ Length = 1 }
            @{ Length = 65536 }
            @{ Length = 1048576 }
        ) {
            $bytes = [byte[]]::new($Length)
            [System.Random]::new($Length).NextBytes($bytes)
            if ($Length -gt 2) { $bytes[0] = 0; $bytes[$Length - 1] = 0 }   # zero bytes travel too
            Send-IpcMessage -Channel $client -InputObject $bytes
            $envelope = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 10 -Envelope

            $envelope.Format | Should -Be 'Bytes'
            $envelope.Size | Should -Be $Length
            $body = $envelope.Body
            , $body | Should -BeOfType ([byte[]])
            $body.Length | Should -Be $Length
            [System.Linq.Enumerable]::SequenceEqual($body, $bytes) | Should -BeTrue
        }

        It 'sends a byte[] from the pipeline (unrolled with the comma operator) as one message' {
            $bytes = [byte[]](0, 1, 2, 0, 255)
            , $bytes | Send-IpcMessage -Channel $client
            $body = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5
            [System.Linq.Enumerable]::SequenceEqual([byte[]]$body, $bytes) | Should -BeTrue
            $body.GetType() | Should -Be ([byte[]])
        }

        It 'sends other objects as CliXml (Deserialized objects with their properties)' {
            [pscustomobject]@{ Name = 'n'; Value = 42; When = [datetime]'2024-02-29T12:34:56' } | Send-IpcMessage -Channel $client
            $envelope = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 -Envelope
            $envelope.Format | Should -Be 'CliXml'
            $envelope.Body.Name | Should -Be 'n'
            $envelope.Body.Value | Should -Be 42
            $envelope.Body.When | Should -Be ([datetime]'2024-02-29T12:34:56')
        }

        It 'sends JSON with -Format Json' {
            Send-IpcMessage -Channel $client -InputObject @{ name = 'json'; count = 3; list = @(1, 2) } -Format Json
            $envelope = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 -Envelope
            $envelope.Format | Should -Be 'Json'
            $envelope.Body.name | Should -Be 'json'
            $envelope.Body.count | Should -Be 3
            $envelope.Body.list | Should -Be @(1, 2)
        }

        It 'sends -Format Json as compact UTF-8 JSON text' {
            Send-IpcMessage -Channel $client -InputObject ([ordered]@{ a = 1; b = 'x' }) -Format Json
            $envelope = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 -Envelope
            $envelope.Size | Should -Be ([System.Text.Encoding]::UTF8.GetByteCount('{"a":1,"b":"x"}'))
        }

        It 'honours -Format Text for a number and -Format Bytes for a byte list' {
            Send-IpcMessage -Channel $client -InputObject 42 -Format Text
            Send-IpcMessage -Channel $client -InputObject @(1, 2, 3) -Format Bytes
            $got = @(Receive-IpcMessage -Channel $server -Count 2 -TimeoutSeconds 5 -Envelope)
            $got[0].Format | Should -Be 'Text'
            $got[0].Body | Should -BeExactly '42'
            $got[1].Format | Should -Be 'Bytes'
            [System.Linq.Enumerable]::SequenceEqual([byte[]]$got[1].Body, [byte[]](1, 2, 3)) | Should -BeTrue
        }

        It 'sends nothing without input' {
            Send-IpcMessage -Channel $client
            @() | Send-IpcMessage -Channel $client
            $client.MessagesSent | Should -Be 0
            Receive-IpcMessage -Channel $server -TimeoutSeconds 0.3 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'sends from the server to its client' {
            'from', 'server' | Send-IpcMessage -Channel $server
            Receive-IpcMessage -Channel $client -Count 2 -TimeoutSeconds 5 | Should -Be @('from', 'server')
        }

        It 'takes the channel by name' {
            # The only channel of that name in this process: the peer is a python client.
            $name = New-TestPipeName
            $named = New-IpcPipe -Name $name
            $peer = Start-PythonPeer @'
s = connect(sys.argv[1])
s.sendall(hello())
kind, _ = read_frame(s)
say('hello' if kind == HELLO else 'no hello')
kind, payload = read_frame(s)
say(kind, payload.decode('utf-8'))
'@ -ArgumentList $named.Address
            Read-PeerLine $peer | Should -Be 'hello'
            'by name' | Send-IpcMessage -Channel $name
            Read-PeerLine $peer | Should -Be '16 by name'
        }

        It 'rejects an unknown channel name while binding -Channel' {
            $err = { 'x' | Send-IpcMessage -Channel 'no-such-channel-here' } |
                Should -Throw -ErrorId 'ParameterArgumentTransformationError,PsIpc.Commands.SendIpcMessageCommand' -PassThru
            $err.Exception.Message | Should -BeLike "*No open channel is named 'no-such-channel-here'*"
        }
    }

    Context 'Failures' {
        It 'fails with ChannelClosed on a channel closed here' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            Close-IpcChannel -Channel $client
            $err = { 'late' | Send-IpcMessage -Channel $client } |
                Should -Throw -ErrorId 'ChannelClosed,PsIpc.Commands.SendIpcMessageCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'ResourceUnavailable'
            $err.TargetObject | Should -Be $server.Name
        }

        It 'fails with ChannelClosed on a closed server' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            Close-IpcChannel -Channel $server
            { Send-IpcMessage -Channel $server -InputObject 'x' } | Should -Throw -ErrorId 'ChannelClosed,PsIpc.Commands.SendIpcMessageCommand'
        }

        It 'fails with PeerDisconnected after the peer closed' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            Close-IpcChannel -Channel $server
            # The client learns of the goodbye: its Receive ends without an error.
            Receive-IpcMessage -Channel $client -TimeoutSeconds 5 | Should -BeNullOrEmpty
            $err = { Send-IpcMessage -Channel $client -InputObject 'anyone there?' } |
                Should -Throw -ErrorId 'PeerDisconnected,PsIpc.Commands.SendIpcMessageCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'ConnectionError'
        }

        It 'fails with PeerDisconnected when a server sends after its only client left' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            Close-IpcChannel -Channel $client
            Receive-IpcMessage -Channel $server -TimeoutSeconds 5 | Should -BeNullOrEmpty
            { Send-IpcMessage -Channel $server -InputObject 'x' -TimeoutSeconds 5 } |
                Should -Throw -ErrorId 'PeerDisconnected,PsIpc.Commands.SendIpcMessageCommand'
        }

        It "fails with MessageTooLarge beyond the peer's -MaxMessageSize before anything is sent" {
            $server = New-IpcPipe -Name (New-TestPipeName) -MaxMessageSize 1024
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5

            $err = { 'small', ('x' * 1025), 'never' | Send-IpcMessage -Channel $client } |
                Should -Throw -ErrorId 'MessageTooLarge,PsIpc.Commands.SendIpcMessageCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'LimitsExceeded'
            $err.Exception.Message | Should -BeLike '*1025 bytes*1024*'

            # Only the message before the big one went out; the connection is intact.
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'small'
            Receive-IpcMessage -Channel $server -TimeoutSeconds 0.5 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $client.State | Should -Be 'Connected'
            Send-IpcMessage -Channel $client -InputObject ('y' * 1024)
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be ('y' * 1024)
        }

        It 'fails with MessageTooLarge for a byte[] beyond the limit of a client that set -MaxMessageSize' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5 -MaxMessageSize 100
            Wait-Until { $server.PeerCount -eq 1 } | Should -BeTrue
            { Send-IpcMessage -Channel $server -InputObject ([byte[]]::new(101)) } |
                Should -Throw -ErrorId 'MessageTooLarge,PsIpc.Commands.SendIpcMessageCommand'
            Send-IpcMessage -Channel $server -InputObject ([byte[]]::new(100))
            (Receive-IpcMessage -Channel $client -Count 1 -TimeoutSeconds 5).Length | Should -Be 100
        }

        It 'fails with SendTimeout when no client ever connects (-TimeoutSeconds 1)' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            $err = { Send-IpcMessage -Channel $server -InputObject 'hello?' -TimeoutSeconds 1 -ErrorAction Stop } |
                Should -Throw -ErrorId 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand' -PassThru
            $sw.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.9 -Because 'it waited for its timeout'
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 120 -Because 'a safety net: it ends at its timeout, not never'
            $err.CategoryInfo.Category | Should -Be 'OperationTimeout'
        }

        It 'reports SendTimeout as non-terminating: silent under SilentlyContinue' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            Send-IpcMessage -Channel $server -InputObject 'hello?' -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable errors
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand'
            $server.MessagesSent | Should -Be 0
        }

        It 'blocks on a peer that does not read, then times out with SendTimeout, with bounded memory' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            $chunk = [byte[]]::new(64KB)
            $produced = @{ Count = 0 }
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            $err = {
                1..2000 | ForEach-Object { $produced.Count++; , $chunk } |
                    Send-IpcMessage -Channel $client -TimeoutSeconds 2 -ErrorAction Stop
            } | Should -Throw -ErrorId 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand' -PassThru
            $sw.Stop()

            # 2000 x 64 KiB = 125 MiB were offered; the server's receive buffer, the sockets and the client's
            # send buffer (8 + 4 MiB by default) hold far less: the sender must have stopped long before.
            $receiveBound = [Math]::Ceiling($server.Options.ReceiveBufferBytes / 64KB) + 1
            # Twice what the two buffers hold leaves room for the sockets' own buffers.
            $senderBound = 2 * [Math]::Ceiling(($server.Options.ReceiveBufferBytes + $client.Options.SendBufferBytes) / 64KB)
            $queued = $client.MessagesSent
            $queued | Should -BeGreaterThan 0
            $queued | Should -BeLessThan $senderBound
            $produced.Count | Should -BeLessThan ($senderBound + 1)
            $server.MessagesReceived | Should -BeLessOrEqual $receiveBound -Because "the server's receive buffer is bounded"
            $err.Exception.Message | Should -BeLike '*not reading*'

            # Nothing was lost: once the server reads, every queued message arrives, and nothing more.
            $received = @(Receive-IpcMessage -Channel $server -Count $queued -TimeoutSeconds 30)
            $received.Count | Should -Be $queued
            Close-IpcChannel -Channel $client -TimeoutSeconds 10
            @(Receive-IpcMessage -Channel $server -TimeoutSeconds 10).Count | Should -Be 0
        }

        It '-TimeoutSeconds 0 sends without an error to a reading peer that has room' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            # Many tries: whether the writer thread has written a message yet must not matter.
            $errors = [System.Collections.ArrayList]::new()
            foreach ($i in 1..200) {
                Send-IpcMessage -Channel $client -InputObject "poll $i" -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable +errors
            }
            $received = Receive-IpcMessage -Channel $server -Count 200 -TimeoutSeconds 10
            $received.Count | Should -Be 200
            # Batches that fit the send buffer: accepted at once, so a poll succeeds.
            foreach ($batch in 1..5) {
                [string[]](1..1000) | Send-IpcMessage -Channel $client -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable +errors
                (Receive-IpcMessage -Channel $server -Count 1000 -TimeoutSeconds 10).Count | Should -Be 1000
            }
            $errors.FullyQualifiedErrorId | Should -BeNullOrEmpty -Because 'every message was accepted and delivered; a zero timeout must not report FlushTimeout for them (a script would send them again)'
        }

        It 'stops waiting on back-pressure when the pipeline is stopped, and the channel stays usable' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath, $Channel)
                        Import-Module $ModulePath
                        $chunk = [byte[]]::new(64KB)
                        1..2000 | ForEach-Object { , $chunk } | Send-IpcMessage -Channel $Channel
                    }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($client)
                # The server does not read: the sender is held back, and stopped once a send waits for room.
                $stop = Stop-WhenWaiting -PowerShell $ps -Channel $client -Until { $client.MessagesSent -gt ($server.Options.ReceiveBufferBytes / 64KB) }
                $stop.State | Should -Be 'Stopped'
                $stop.Waiters | Should -Be 0 -Because 'the Send no longer waits'

                $queued = $client.MessagesSent
                $queued | Should -BeLessThan (2 * [Math]::Ceiling(($server.Options.ReceiveBufferBytes + $client.Options.SendBufferBytes) / 64KB))
                @(Receive-IpcMessage -Channel $server -Count $queued -TimeoutSeconds 30).Count | Should -Be $queued
                'after the stop' | Send-IpcMessage -Channel $client -TimeoutSeconds 10
                Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 10 | Should -Be 'after the stop'
            }
            finally {
                $ps.Dispose()
            }
        }

        It 'stops waiting for room when the pipeline is stopped' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath, $Server)
                        Import-Module $ModulePath
                        'waiting' | Send-IpcMessage -Channel $Server
                    }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($server)
                # A server without clients: the send waits for one.
                $stop = Stop-WhenWaiting -PowerShell $ps -Channel $server
                $stop.State | Should -Be 'Stopped'
                $stop.Waiters | Should -Be 0 -Because 'the Send no longer waits'
                $server.State | Should -Be 'Listening'
            }
            finally {
                $ps.Dispose()
            }
        }
    }
}
