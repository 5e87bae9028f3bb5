BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    # A python client that speaks the protocol: hello, then whatever -Frames says (python expressions
    # that evaluate to bytes), then 'sent' on standard output, then it hangs until killed.
    function Start-PythonSender {
        param([Parameter(Mandatory)] [string] $Path, [Parameter(Mandatory)] [string] $Frames)
        Start-PythonPeer (@'
s = connect(sys.argv[1])
s.sendall(hello())
kind, _ = read_frame(s)
say('hello' if kind == HELLO else 'no hello: %d' % kind)
s.sendall(FRAMES)
say('sent')
hang()
'@ -replace 'FRAMES', $Frames) -ArgumentList $Path
    }
}

AfterAll {
    Clear-TestState
}

Describe 'Receive-IpcMessage' {
    AfterEach {
        Clear-TestState
    }

    Context 'Counting, timeouts and the end of the stream' {
        BeforeEach {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        }

        It '-Count takes N messages and leaves the rest for the next Receive' {
            1..5 | ForEach-Object { "m$_" } | Send-IpcMessage -Channel $client

            Receive-IpcMessage -Channel $server -Count 2 -TimeoutSeconds 5 | Should -Be @('m1', 'm2')
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'm3'
            Receive-IpcMessage -Channel $server -Count 2 -TimeoutSeconds 5 | Should -Be @('m4', 'm5')
            $server.MessagesReceived | Should -Be 5
        }

        It '-Count works with the first messages of a large batch and keeps the rest' {
            [string[]](1..3000) | Send-IpcMessage -Channel $client
            $first = Receive-IpcMessage -Channel $server -Count 1500 -TimeoutSeconds 10
            $first.Count | Should -Be 1500
            $first[-1] | Should -Be '1500'
            $rest = Receive-IpcMessage -Channel $server -Count 1500 -TimeoutSeconds 10
            $rest[0] | Should -Be '1501'
            $rest[-1] | Should -Be '3000'
        }

        It 'fails with ReceiveTimeout when nothing arrives in time' {
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            $err = { Receive-IpcMessage -Channel $server -TimeoutSeconds 0.5 -ErrorAction Stop } |
                Should -Throw -ErrorId 'ReceiveTimeout,PsIpc.Commands.ReceiveIpcMessageCommand' -PassThru
            $sw.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.45 -Because 'it waited for its timeout'
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 120 -Because 'a safety net: it ends at its timeout, not never'
            $err.CategoryInfo.Category | Should -Be 'OperationTimeout'
            $err.TargetObject | Should -Be $server.Name
        }

        It 'reports ReceiveTimeout as non-terminating: silent under SilentlyContinue, with what arrived' {
            'one', 'two' | Send-IpcMessage -Channel $client
            $got = Receive-IpcMessage -Channel $server -Count 3 -TimeoutSeconds 1 -ErrorAction SilentlyContinue -ErrorVariable errors
            $after = 'the script went on'

            $got | Should -Be @('one', 'two')
            $after | Should -Be 'the script went on'
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'ReceiveTimeout,PsIpc.Commands.ReceiveIpcMessageCommand'
            $errors[0].Exception.Message | Should -BeLike '*2 of 3 messages*'
        }

        It 'accepts the -TimeoutSec alias' {
            { Receive-IpcMessage -Channel $server -TimeoutSec 0.2 -ErrorAction Stop } |
                Should -Throw -ErrorId 'ReceiveTimeout,PsIpc.Commands.ReceiveIpcMessageCommand'
        }

        It '-TimeoutSeconds 0 polls: returns what is there at once, then ReceiveTimeout' {
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            $empty = Receive-IpcMessage -Channel $server -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable errors
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 120 -Because 'a safety net: 0 polls, it does not wait for a message'
            $empty | Should -BeNullOrEmpty
            $errors[0].FullyQualifiedErrorId | Should -Be 'ReceiveTimeout,PsIpc.Commands.ReceiveIpcMessageCommand'

            'a', 'b', 'c' | Send-IpcMessage -Channel $client
            Wait-Until { $server.MessagesReceived -eq 3 } | Should -BeTrue
            Receive-IpcMessage -Channel $server -TimeoutSeconds 0 -Count 3 | Should -Be @('a', 'b', 'c')

            'd' | Send-IpcMessage -Channel $client
            Wait-Until { $server.MessagesReceived -eq 4 } | Should -BeTrue
            $got = Receive-IpcMessage -Channel $server -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable errors
            $got | Should -Be 'd'
            $errors.Count | Should -Be 1
        }

        It 'ends cleanly, without an error, when the peer closes' {
            'x', 'y', 'z' | Send-IpcMessage -Channel $client
            Close-IpcChannel -Channel $client
            # Ended by the close, not by the timeout: a timeout would be a ReceiveTimeout error.
            $got = Receive-IpcMessage -Channel $server -TimeoutSeconds 60 -ErrorVariable errors
            $got | Should -Be @('x', 'y', 'z')
            $errors.Count | Should -Be 0
            # And again: still the end, at once.
            Receive-IpcMessage -Channel $server -TimeoutSeconds 20 -ErrorVariable errors | Should -BeNullOrEmpty
            $errors.Count | Should -Be 0
        }

        It 'ends cleanly on the client when the server closes' {
            'bye' | Send-IpcMessage -Channel $server
            Close-IpcChannel -Channel $server
            $got = Receive-IpcMessage -Channel $client -TimeoutSeconds 20 -ErrorVariable errors
            $got | Should -Be 'bye'
            $errors.Count | Should -Be 0
            $client.State | Should -Be 'Closed'
        }

        It 'leaves the rest in the channel when a downstream Select-Object -First stops it' {
            [string[]](1..10) | Send-IpcMessage -Channel $client
            Wait-Until { $server.MessagesReceived -eq 10 } | Should -BeTrue
            Receive-IpcMessage -Channel $server -TimeoutSeconds 5 | Select-Object -First 2 | Should -Be @('1', '2')
            $rest = Receive-IpcMessage -Channel $server -TimeoutSeconds 1 -ErrorAction SilentlyContinue
            $rest | Should -Be ([string[]](3..10)) -Because 'nothing is drained silently'
        }

        It 'fails with ChannelClosed on a channel closed here' {
            Close-IpcChannel -Channel $server
            $err = { Receive-IpcMessage -Channel $server -TimeoutSeconds 1 } |
                Should -Throw -ErrorId 'ChannelClosed,PsIpc.Commands.ReceiveIpcMessageCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'ResourceUnavailable'
        }

        It 'takes the channel from the pipeline' {
            'piped' | Send-IpcMessage -Channel $client
            $server | Receive-IpcMessage -Count 1 -TimeoutSeconds 5 | Should -Be 'piped'
        }

        It 'validates -Count' {
            { Receive-IpcMessage -Channel $server -Count 0 } | Should -Throw -ErrorId 'ParameterArgumentValidationError,PsIpc.Commands.ReceiveIpcMessageCommand'
            { Receive-IpcMessage -Channel $server -TimeoutSeconds -1 } | Should -Throw -ErrorId 'ParameterArgumentValidationError,PsIpc.Commands.ReceiveIpcMessageCommand'
        }
    }

    Context 'Envelopes and replies' {
        It '-Envelope gives Sender, SenderProcessId, ReceivedAt and Body; a reply to the Sender reaches that client only' {
            $server = New-IpcPipe -Name (New-TestPipeName) -MaxClients 2
            $alice = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            $bob = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            $before = [datetime]::Now

            'from alice' | Send-IpcMessage -Channel $alice
            $first = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 -Envelope
            'from bob' | Send-IpcMessage -Channel $bob
            $second = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 -Envelope

            $first | Should -BeOfType ([PsIpc.IpcEnvelope])
            $first.Body | Should -Be 'from alice'
            $first.Format | Should -Be 'Text'
            $first.Size | Should -Be 10
            $first.SenderProcessId | Should -Be $PID
            $first.Sender | Should -BeOfType ([PsIpc.Transport.Channels.IpcPeer])
            $first.Sender.Role | Should -Be 'Peer'
            $first.Sender.Name | Should -BeLike "$($server.Name)#*"
            $first.Channel | Should -Be $server
            $first.ReceivedAt | Should -BeOfType ([datetime])
            $first.ReceivedAt | Should -BeGreaterOrEqual $before.AddSeconds(-1)
            $first.ReceivedAt | Should -BeLessOrEqual ([datetime]::Now)
            $second.Body | Should -Be 'from bob'
            $second.Sender.Name | Should -Not -Be $first.Sender.Name

            'reply to bob' | Send-IpcMessage -Channel $second.Sender
            'reply to alice' | Send-IpcMessage -Channel $first.Sender
            Receive-IpcMessage -Channel $bob -Count 1 -TimeoutSeconds 5 | Should -Be 'reply to bob'
            Receive-IpcMessage -Channel $alice -Count 1 -TimeoutSeconds 5 | Should -Be 'reply to alice'
            Receive-IpcMessage -Channel $bob -TimeoutSeconds 0.5 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            Receive-IpcMessage -Channel $alice -TimeoutSeconds 0.5 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It '-Envelope reports the process id of a sender in another process, and the reply reaches it' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $child = Start-TestPwshChild {
                param($Name)
                $c = New-IpcPipe -Name $Name -Connect -TimeoutSeconds 30
                "hello from $PID" | Send-IpcMessage -Channel $c
                Receive-IpcMessage -Channel $c -Count 1 -TimeoutSeconds 30
            } -ArgumentList $server.Name
            $envelope = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 30 -Envelope
            $envelope.SenderProcessId | Should -Be $child.Id
            $envelope.Body | Should -Be "hello from $($child.Id)"
            'answer' | Send-IpcMessage -Channel $envelope.Sender
            $result = Wait-PwshChild $child -TimeoutSeconds 30
            $result.ExitCode | Should -Be 0 -Because $result.Error
            $result.Output | Should -Be 'answer'
        }

        It 'on a client, -Envelope names the server as the sender' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            'from the server' | Send-IpcMessage -Channel $server
            $envelope = Receive-IpcMessage -Channel $client -Count 1 -TimeoutSeconds 5 -Envelope
            $envelope.Body | Should -Be 'from the server'
            $envelope.Sender | Should -Be $client
            $envelope.SenderProcessId | Should -Be $PID
            'reply' | Send-IpcMessage -Channel $envelope.Sender
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'reply'
        }

        It 'a reply to a sender that has gone fails with PeerDisconnected' {
            $server = New-IpcPipe -Name (New-TestPipeName) -MaxClients 2
            $gone = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            $stays = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            'bye' | Send-IpcMessage -Channel $gone
            $envelope = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 -Envelope
            Close-IpcChannel -Channel $gone
            Wait-Until { $envelope.Sender.State -ne 'Connected' } | Should -BeTrue
            { 'too late' | Send-IpcMessage -Channel $envelope.Sender } |
                Should -Throw -ErrorId 'PeerDisconnected,PsIpc.Commands.SendIpcMessageCommand'
            'the other one' | Send-IpcMessage -Channel $server
            Receive-IpcMessage -Channel $stays -Count 1 -TimeoutSeconds 5 | Should -Be 'the other one'
        }

        It 'a sender is not a channel to receive from' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            'x' | Send-IpcMessage -Channel $client
            $envelope = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 -Envelope
            { Receive-IpcMessage -Channel $envelope.Sender -TimeoutSeconds 0 } |
                Should -Throw -ErrorId 'OperationNotSupported,PsIpc.Commands.ReceiveIpcMessageCommand'
        }
    }

    Context 'Stopping (Ctrl+C)' {
        It 'a runspace blocked in Receive-IpcMessage stops on PowerShell.Stop() and the channel stays usable' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath, $Channel)
                        Import-Module $ModulePath
                        Receive-IpcMessage -Channel $Channel
                    }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($server)
                $stop = Stop-WhenWaiting -PowerShell $ps -Channel $server
                $stop.State | Should -Be 'Stopped'
                $stop.Waiters | Should -Be 0 -Because 'the Receive no longer waits'
                $stop.Handle.IsCompleted | Should -BeTrue

                # Nothing was taken away by the stopped Receive: the channel goes on.
                $server.IsClosed | Should -BeFalse
                'after the stop' | Send-IpcMessage -Channel $client
                Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'after the stop'
                'and back' | Send-IpcMessage -Channel $server
                Receive-IpcMessage -Channel $client -Count 1 -TimeoutSeconds 5 | Should -Be 'and back'
            }
            finally {
                $ps.Dispose()
            }
        }

        It 'a stopped Receive with -Count leaves the messages it did not take' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            'first' | Send-IpcMessage -Channel $client
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath, $Channel)
                        Import-Module $ModulePath
                        Receive-IpcMessage -Channel $Channel -Count 5
                    }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($server)
                $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
                $handle = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $output)
                Wait-Until { $output.Count -eq 1 } | Should -BeTrue
                $ps.Stop()
                $ps.InvocationStateInfo.State | Should -Be 'Stopped'
                @($output) | Should -Be 'first'

                'second' | Send-IpcMessage -Channel $client
                Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'second'
            }
            finally {
                $ps.Dispose()
            }
        }

        It 'a Receive stopped while a downstream command works on a message neither loses nor repeats messages' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            [string[]](1..20) | Send-IpcMessage -Channel $client
            Wait-Until { $server.MessagesReceived -eq 20 } | Should -BeTrue
            $seen = [System.Collections.Concurrent.ConcurrentQueue[string]]::new()
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath, $Channel, $Seen)
                        Import-Module $ModulePath
                        Receive-IpcMessage -Channel $Channel | ForEach-Object { $Seen.Enqueue($_); Start-Sleep -Milliseconds 200 }
                    }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($server).AddArgument($seen)
                $handle = $ps.BeginInvoke()
                Wait-Until { $seen.Count -ge 3 } | Should -BeTrue
                $ps.Stop()
                $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            }
            finally {
                $ps.Dispose()
            }
            $rest = @(Receive-IpcMessage -Channel $server -TimeoutSeconds 1 -ErrorAction SilentlyContinue)
            $all = @($seen.ToArray()) + $rest
            $all | Should -Be ([string[]](1..20)) -Because 'every message is seen exactly once, in order'
        }
    }

    Context 'Misbehaving peers' {
        It 'a client that writes garbage gets a ProtocolError record; the server goes on serving other clients' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $garbage = Start-PythonPeer @'
s = connect(sys.argv[1])
s.sendall(b'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
reply = read_frame(s)
say('error frame' if reply and reply[0] == ERROR else 'reply: %r' % (reply,))
say('code %d' % reply[1][0] if reply else 'none')
say('eof' if s.recv(1) == b'' else 'more')
'@ -ArgumentList $server.Address
            Read-PeerLine $garbage | Should -Be 'error frame'
            Read-PeerLine $garbage | Should -Be 'code 2' -Because 'error code 2 is a protocol error'
            Read-PeerLine $garbage | Should -Be 'eof'

            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            'a real message' | Send-IpcMessage -Channel $client
            $got = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 10 -ErrorVariable errors -ErrorAction SilentlyContinue

            $got | Should -Be 'a real message'
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'ProtocolError,PsIpc.Commands.ReceiveIpcMessageCommand'
            $errors[0].CategoryInfo.Category | Should -Be 'ProtocolError'
            $server.ClientsAccepted | Should -Be 1 -Because 'the garbage connection never counted as a client'
        }

        It 'a client that speaks PsIpc, then sends garbage: its messages before it arrive, then ProtocolError' {
            $server = New-IpcPipe -Name (New-TestPipeName) -MaxClients 2
            $peer = Start-PythonSender -Path $server.Address -Frames "text('ok 1') + text('ok 2') + b'\xff\xff\xff\x00\x7fjunk'"
            Read-PeerLine $peer | Should -Be 'hello'
            Read-PeerLine $peer | Should -Be 'sent'
            $got = Receive-IpcMessage -Channel $server -Count 2 -TimeoutSeconds 10 -ErrorVariable errors -ErrorAction SilentlyContinue
            $got | Should -Be @('ok 1', 'ok 2')
            # The error comes right after them.
            $more = Receive-IpcMessage -Channel $server -TimeoutSeconds 1 -ErrorVariable errors -ErrorAction SilentlyContinue
            $more | Should -BeNullOrEmpty
            $errors.FullyQualifiedErrorId | Should -Contain 'ProtocolError,PsIpc.Commands.ReceiveIpcMessageCommand'

            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            'still serving' | Send-IpcMessage -Channel $client
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'still serving'
        }

        It 'a message that does not decode (<Kind>) gives a DecodeFailed record and the messages after it still arrive' -ForEach @(
            @{ Kind = 'CliXml'; Frame = "frame(CLIXML, b'<Objs><not closed')" }
            @{ Kind = 'Json'; Frame = "frame(JSON, b'{not json')" }
        ) {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $peer = Start-PythonSender -Path $server.Address -Frames "text('before') + $Frame + text('after') + text('last')"
            Read-PeerLine $peer | Should -Be 'hello'
            Read-PeerLine $peer | Should -Be 'sent'
            Wait-Until { $server.MessagesReceived -eq 4 } | Should -BeTrue

            $got = $null
            $thrown = $null
            try {
                # -Count 3 takes three messages: 'before', the bad one (an error record) and 'after'.
                $got = Receive-IpcMessage -Channel $server -Count 3 -TimeoutSeconds 5 -ErrorVariable errors -ErrorAction SilentlyContinue
            }
            catch {
                $thrown = $_
            }
            $thrown | Should -BeNullOrEmpty -Because 'a message that does not decode is a non-terminating error'
            $got | Should -Be @('before', 'after')
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'DecodeFailed,PsIpc.Commands.ReceiveIpcMessageCommand'
            $errors[0].CategoryInfo.Category | Should -Be 'InvalidData'
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'last' -Because 'the message after -Count stays in the channel'
        }

        It 'a peer of another protocol version gets ProtocolVersionMismatch' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $peer = Start-PythonPeer @'
s = connect(sys.argv[1])
s.sendall(frame(HELLO, b'PSIPC' + bytes([2, 0, 0]) + struct.pack('<II', os.getpid(), 1 << 20)))
reply = read_frame(s)
say('error code %d' % reply[1][0] if reply and reply[0] == ERROR else 'reply: %r' % (reply,))
'@ -ArgumentList $server.Address
            Read-PeerLine $peer | Should -Be 'error code 4'
            $null = Receive-IpcMessage -Channel $server -TimeoutSeconds 1 -ErrorVariable errors -ErrorAction SilentlyContinue
            $errors[0].FullyQualifiedErrorId | Should -Be 'ProtocolVersionMismatch,PsIpc.Commands.ReceiveIpcMessageCommand'
            $errors[0].Exception.Message | Should -BeLike '*version 2*'
            $server.ClientsAccepted | Should -Be 0
        }

        It 'a peer that announces a length beyond -MaxMessageSize gets MessageTooLarge on the receiver' {
            $server = New-IpcPipe -Name (New-TestPipeName) -MaxMessageSize 1000
            $peer = Start-PythonPeer @'
s = connect(sys.argv[1])
s.sendall(hello())
read_frame(s)
s.sendall(text('fits') + struct.pack('<IB', 1001, TEXT) + b'x' * 10)
reply = read_frame(s)
say('error code %d' % reply[1][0] if reply and reply[0] == ERROR else 'reply: %r' % (reply,))
hang()
'@ -ArgumentList $server.Address
            Read-PeerLine $peer | Should -Be 'error code 3' -Because 'the receiver tells the peer why it hangs up (3: message too large)'
            # With its only client gone the server has nothing more to wait for: one error, and no ReceiveTimeout after it.
            $got = Receive-IpcMessage -Channel $server -TimeoutSeconds 60 -ErrorVariable errors -ErrorAction SilentlyContinue
            $got | Should -Be 'fits'
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'MessageTooLarge,PsIpc.Commands.ReceiveIpcMessageCommand'
            $errors[0].CategoryInfo.Category | Should -Be 'LimitsExceeded'
            $errors[0].Exception.Message | Should -BeLike '*1001*1000*'
        }

        It 'a peer that announces 4 GiB against the default limit gets MessageTooLarge without an allocation' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $peer = Start-PythonSender -Path $server.Address -Frames "struct.pack('<IB', 0xFFFFFFFF, BYTES)"
            Read-PeerLine $peer | Should -Be 'hello'
            Read-PeerLine $peer | Should -Be 'sent'
            $null = Receive-IpcMessage -Channel $server -TimeoutSeconds 20 -ErrorVariable errors -ErrorAction SilentlyContinue
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'MessageTooLarge,PsIpc.Commands.ReceiveIpcMessageCommand'
        }

        It 'a peer killed with kill -9 in the middle of its 4th message: 3 messages, then PeerDisconnected' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $frames = "text('one') + text('two') + text('three') + text('four, but only half of it')[:12]"
            $peer = Start-PythonSender -Path $server.Address -Frames $frames
            Read-PeerLine $peer | Should -Be 'hello'
            Read-PeerLine $peer | Should -Be 'sent'
            Wait-Until { $server.MessagesReceived -eq 3 } | Should -BeTrue
            Stop-TestProcess $peer

            # Ended by the broken connection, not by the timeout: one error, and no ReceiveTimeout after it.
            $got = Receive-IpcMessage -Channel $server -TimeoutSeconds 60 -ErrorVariable errors -ErrorAction SilentlyContinue
            $got | Should -Be @('one', 'two', 'three')
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'PeerDisconnected,PsIpc.Commands.ReceiveIpcMessageCommand'
            $errors[0].CategoryInfo.Category | Should -Be 'ConnectionError'
            $errors[0].Exception.Message | Should -BeLike '*middle of a message*'
        }

        It 'one client dying mid-message does not end the server: the other client goes on' {
            $server = New-IpcPipe -Name (New-TestPipeName) -MaxClients 2
            $dying = Start-PythonSender -Path $server.Address -Frames "text('d1') + text('d2') + text('d3, cut')[:9]"
            Read-PeerLine $dying | Should -Be 'hello'
            Read-PeerLine $dying | Should -Be 'sent'
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            Wait-Until { $server.MessagesReceived -eq 2 } | Should -BeTrue
            Stop-TestProcess $dying
            Wait-Until { $server.PeerCount -eq 1 } | Should -BeTrue
            'alive' | Send-IpcMessage -Channel $client
            Close-IpcChannel -Channel $client

            $got = Receive-IpcMessage -Channel $server -TimeoutSeconds 20 -ErrorVariable errors -ErrorAction SilentlyContinue
            $got | Should -Be @('d1', 'd2', 'alive')
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'PeerDisconnected,PsIpc.Commands.ReceiveIpcMessageCommand'
        }

        It 'a peer that closes at a frame boundary without goodbye ends the stream cleanly' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $peer = Start-PythonPeer @'
s = connect(sys.argv[1])
s.sendall(hello())
read_frame(s)
s.sendall(text('one') + text('two'))
s.close()
say('closed')
'@ -ArgumentList $server.Address
            Read-PeerLine $peer | Should -Be 'closed'
            $got = Receive-IpcMessage -Channel $server -TimeoutSeconds 20 -ErrorVariable errors -ErrorAction SilentlyContinue
            $got | Should -Be @('one', 'two')
            $errors.Count | Should -Be 0
        }

        It 'a python server that speaks the protocol: the client receives its frames, then PeerDisconnected when it dies mid-frame' {
            $name = New-TestPipeName
            $path = Get-PipePath $name
            $peer = Start-PythonPeer @'
path = sys.argv[1]
srv, conn = accept_one(path)
kind, _ = read_frame(conn)
conn.sendall(hello() + text('a') + frame(BYTES, b'\x00\x01') + text('partial')[:7])
say('sent')
hang()
'@ -ArgumentList $path
            try {
                Read-PeerLine $peer | Should -Be 'ready'
                $client = New-IpcPipe -Name $name -Connect -TimeoutSeconds 10
                Read-PeerLine $peer | Should -Be 'sent'
                Wait-Until { $client.MessagesReceived -eq 2 } | Should -BeTrue
                Stop-TestProcess $peer
                $got = @(Receive-IpcMessage -Channel $client -TimeoutSeconds 20 -ErrorVariable errors -ErrorAction SilentlyContinue)
                $got.Count | Should -Be 2
                $got[0] | Should -Be 'a'
                [System.Linq.Enumerable]::SequenceEqual([byte[]]$got[1], [byte[]](0, 1)) | Should -BeTrue
                $errors.Count | Should -Be 1
                $errors[0].FullyQualifiedErrorId | Should -Be 'PeerDisconnected,PsIpc.Commands.ReceiveIpcMessageCommand'
                $client.State | Should -Be 'Faulted'
            }
            finally {
                Remove-Item -LiteralPath $path -ErrorAction SilentlyContinue
            }
        }
    }

    Context 'Bulk bytes: -Buffer and -OutFile' {
        BeforeEach {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
        }

        It '-Buffer copies each message into the array and writes its length while the buffer holds it' {
            $big = [byte[]]::new(1MB)
            [System.Random]::new(7).NextBytes($big)
            Send-IpcMessage -Channel $client -InputObject $big
            Send-IpcMessage -Channel $client -InputObject 'héllo'
            Send-IpcMessage -Channel $client -InputObject ([byte[]]::new(0))
            $buffer = [byte[]]::new(2MB)
            $seen = Receive-IpcMessage -Channel $server -Buffer $buffer -Count 3 -TimeoutSeconds 10 | ForEach-Object {
                [pscustomobject]@{ Size = $_; Type = $_.GetType().Name; Head = [System.Convert]::ToBase64String($buffer, 0, [Math]::Min($_, 16)) }
            }
            $seen.Size | Should -Be @(1MB, 6, 0)
            $seen[0].Type | Should -Be 'Int32'
            $seen[0].Head | Should -Be ([System.Convert]::ToBase64String($big, 0, 16))
            $seen[1].Head | Should -Be ([System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes('héllo')))
            $rest = [System.ArraySegment[byte]]::new($buffer, 6, 1MB - 6)
            [System.Linq.Enumerable]::SequenceEqual[byte]($rest, [System.ArraySegment[byte]]::new($big, 6, 1MB - 6)) | Should -BeTrue -Because 'the text overwrote only its own 6 bytes'
        }

        It 'a message longer than -Buffer stops with BufferTooSmall and stays in the channel' {
            Send-IpcMessage -Channel $client -InputObject ([byte[]](1..100))
            $err = { Receive-IpcMessage -Channel $server -Buffer ([byte[]]::new(99)) -TimeoutSeconds 10 } |
                Should -Throw -ErrorId 'BufferTooSmall,PsIpc.Commands.ReceiveIpcMessageCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'LimitsExceeded'
            $err.TargetObject | Should -Be $server.Name
            $again = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 10
            $again.Length | Should -Be 100
            $again[99] | Should -Be 100
        }

        It '-OutFile writes every message''s bytes in order, relative to the current location, and ends when the peer closes' {
            $chunks = 1..5 | ForEach-Object { $b = [byte[]]::new(300KB + $_); [System.Random]::new($_).NextBytes($b); , $b }
            $chunks | Send-IpcMessage -Channel $client
            Close-IpcChannel -Channel $client
            Push-Location -Path TestDrive:\
            try {
                $out = Receive-IpcMessage -Channel $server -OutFile 'copy.bin' -TimeoutSeconds 30
            }
            finally {
                Pop-Location
            }
            $out | Should -BeNullOrEmpty
            $expected = [System.IO.MemoryStream]::new()
            foreach ($c in $chunks) { $expected.Write($c, 0, $c.Length) }
            $written = [System.IO.File]::ReadAllBytes((Join-Path -Path $TestDrive -ChildPath 'copy.bin'))
            $written.Length | Should -Be $expected.Length
            [System.Linq.Enumerable]::SequenceEqual($written, $expected.ToArray()) | Should -BeTrue
        }

        It '-OutFile replaces a file that exists, and creates it even when nothing arrives' {
            $path = Join-Path -Path $TestDrive -ChildPath 'old.bin'
            [System.IO.File]::WriteAllText($path, 'old content')
            Receive-IpcMessage -Channel $server -OutFile $path -TimeoutSeconds 0.2 -ErrorVariable errors -ErrorAction SilentlyContinue
            $errors[0].FullyQualifiedErrorId | Should -Be 'ReceiveTimeout,PsIpc.Commands.ReceiveIpcMessageCommand'
            (Get-Item -LiteralPath $path).Length | Should -Be 0
        }

        It 'a peer killed in the middle of a large message: the file holds the messages before, then PeerDisconnected' {
            $alone = New-IpcPipe -Name (New-TestPipeName) # its only client is the peer
            $frames = "struct.pack('<IB', 1048576, BYTES) + b'a' * 1048576 + struct.pack('<IB', 1048576, BYTES) + b'b' * 500000"
            $peer = Start-PythonPeer (@'
s = connect(sys.argv[1])
s.sendall(hello())
read_frame(s)
s.sendall(FRAMES)
say('sent')
hang()
'@ -replace 'FRAMES', $frames) -ArgumentList $alone.Address
            Read-PeerLine $peer | Should -Be 'sent'
            Wait-Until { $alone.MessagesReceived -ge 1 } | Should -BeTrue
            Stop-TestProcess $peer
            $path = Join-Path -Path $TestDrive -ChildPath 'partial.bin'
            Receive-IpcMessage -Channel $alone -OutFile $path -TimeoutSeconds 60 -ErrorVariable errors -ErrorAction SilentlyContinue
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'PeerDisconnected,PsIpc.Commands.ReceiveIpcMessageCommand'
            $errors[0].Exception.Message | Should -BeLike '*middle of a message*'
            (Get-Item -LiteralPath $path).Length | Should -Be 1MB
        }

        It 'a closed channel is ChannelClosed' {
            Close-IpcChannel -Channel $server
            { Receive-IpcMessage -Channel $server -Buffer ([byte[]]::new(8)) -TimeoutSeconds 1 } |
                Should -Throw -ErrorId 'ChannelClosed,PsIpc.Commands.ReceiveIpcMessageCommand'
        }

        It 'a runspace blocked in Receive-IpcMessage -Buffer stops on PowerShell.Stop() and the message after it still arrives' {
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath, $Channel)
                        Import-Module $ModulePath
                        Receive-IpcMessage -Channel $Channel -Buffer ([byte[]]::new(16))
                    }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($server)
                $stop = Stop-WhenWaiting -PowerShell $ps -Channel $server
                $stop.State | Should -Be 'Stopped'
                $stop.Waiters | Should -Be 0
                Send-IpcMessage -Channel $client -InputObject 'after the stop'
                $buffer = [byte[]]::new(16)
                $n = Receive-IpcMessage -Channel $server -Buffer $buffer -Count 1 -TimeoutSeconds 5
                [System.Text.Encoding]::UTF8.GetString($buffer, 0, $n) | Should -Be 'after the stop'
            }
            finally {
                $ps.Dispose()
            }
        }
    }

    Context 'Tab completion' {
        It 'completes -Channel with the names of the open channels' {
            $prefix = 'psipctabr' + [guid]::NewGuid().ToString('N').Substring(0, 6)
            $one = New-IpcPipe -Name "$prefix-one"
            $two = New-IpcPipe -Name "$prefix-two"
            $line = "Receive-IpcMessage -Channel $prefix"
            $result = TabExpansion2 -inputScript $line -cursorColumn $line.Length
            $result.CompletionMatches.CompletionText | Sort-Object | Should -Be @("$prefix-one", "$prefix-two")
        }
    }
}

Describe 'Receive-IpcMessage progress' {
    It 'reports a wait that lasts with Write-Progress, and completes the record at the end' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                    param($ModulePath, $Name)
                    Import-Module $ModulePath
                    $server = New-IpcPipe -Name $Name
                    try { Receive-IpcMessage $server -TimeoutSeconds 3.5 -ErrorAction SilentlyContinue }
                    finally { Close-IpcChannel $server }
                }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument((New-TestPipeName))
            $null = $ps.Invoke()
            $progress = @($ps.Streams.Progress)

            $progress.Count | Should -BeGreaterThan 1
            $progress[0].StatusDescription | Should -Match 'Waited \d+ s'
            $progress[-1].RecordType | Should -Be 'Completed'
        }
        finally {
            $ps.Dispose()
        }
    }
}
