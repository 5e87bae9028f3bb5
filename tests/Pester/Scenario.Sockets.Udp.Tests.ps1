BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    function Get-FreeUdpPort {
        # A port nothing listens on: bound, read, released.
        $probe = [System.Net.Sockets.UdpClient]::new([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, 0))
        try { $probe.Client.LocalEndPoint.Port } finally { $probe.Dispose() }
    }
}

AfterAll {
    Clear-TestState
}

Describe 'UDP sockets (Start-IpcSocketServer -Udp, Connect-IpcSocket -Udp)' {
    AfterEach {
        Clear-TestState
    }

    Context 'With programs that know nothing of PsIpc' {
        It 'a script-block server answers a plain python3 UDP client, one datagram per message (Raw)' {
            $srv = Start-IpcSocketServer -Udp -Framing Raw -ScriptBlock { param($message) 'ACK: ' + [System.Text.Encoding]::UTF8.GetString($message) }
            $srv | Should -BeOfType ([PsIpc.Transport.Sockets.UdpServerChannel])
            $srv.Kind | Should -Be 'Udp'
            $srv.Port | Should -BeGreaterThan 0
            $srv.Address | Should -Be "127.0.0.1:$($srv.Port)"
            $srv.State | Should -Be 'Listening'

            $py = Start-PythonPeer @'
s = udp_socket()
server = ('127.0.0.1', int(sys.argv[1]))
for word in (b'Hello, IPC!', b'second'):
    s.sendto(word, server)
    data, source = s.recvfrom(65535)
    say(data.decode(), source == server)
say(s.getsockname()[1])
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be 'ACK: Hello, IPC! True'
            Read-PeerLine $py | Should -Be 'ACK: second True'
            $pythonPort = Read-PeerLine $py
            $srv.ClientCount | Should -Be 1
            $srv.Peers[0].RemoteAddress | Should -Be "127.0.0.1:$pythonPort"
            $srv.MessagesReceived | Should -Be 2
            Wait-Until { $srv.MessagesSent -eq 2 } | Should -BeTrue
            $srv.HandlerErrors | Should -Be 0
            $srv.DatagramsDropped | Should -Be 0
        }

        It 'Line framing: a datagram is a line of text, a reply is a line' {
            $srv = Start-IpcSocketServer -Udp -Framing Line -ScriptBlock { param($message) $message.ToUpper() }
            $py = Start-PythonPeer @'
s = udp_socket()
for line in (b'one\n', b'two\r\n', b'three'):
    s.sendto(line, ('127.0.0.1', int(sys.argv[1])))
    say(repr(s.recvfrom(65535)[0]))
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be "b'ONE\n'"
            Read-PeerLine $py | Should -Be "b'TWO\n'"
            Read-PeerLine $py | Should -Be "b'THREE\n'"
        }

        It 'a PsIpc client talks to a plain python3 UDP echo server, Raw and Line' {
            $py = Start-PythonPeer @'
s = udp_socket(timeout=60)
say(s.getsockname()[1])
while True:
    data, source = s.recvfrom(65535)
    s.sendto(data.upper(), source)
'@
            $port = [int](Read-PeerLine $py)
            $raw = Connect-IpcSocket -Udp -Port $port -Framing Raw
            $raw | Should -BeOfType ([PsIpc.Transport.Sockets.UdpClientChannel])
            $raw.Kind | Should -Be 'Udp'
            Send-IpcMessage $raw 'hello over udp'
            $reply = Receive-IpcMessage $raw -Count 1 -TimeoutSeconds 10
            , $reply | Should -BeOfType ([byte[]])
            [System.Text.Encoding]::UTF8.GetString($reply) | Should -Be 'HELLO OVER UDP'

            $line = Connect-IpcSocket -Udp -ComputerName localhost -Port $port -Framing Line
            'a', 'b' | Send-IpcMessage $line
            Receive-IpcMessage $line -Count 2 -TimeoutSeconds 10 | Should -Be 'A', 'B'
            $raw.MessagesReceived | Should -Be 1
            $line.MessagesSent | Should -Be 2
        }
    }

    Context 'Without a script block' {
        It 'Receive-IpcMessage reads datagrams, the envelope''s Sender replies to one peer, sending to the server reaches all' {
            $srv = Start-IpcSocketServer -Udp
            $py = Start-PythonPeer @'
s = udp_socket()
s.sendto(text('hello from python'), ('127.0.0.1', int(sys.argv[1])))
for _ in range(2):
    kind, payload = udp_frame(s.recvfrom(65535)[0])
    say(hex(kind), payload.decode())
'@ -ArgumentList $srv.Port
            $envelope = Receive-IpcMessage $srv -Count 1 -Envelope -TimeoutSeconds 10
            $envelope.Body | Should -Be 'hello from python'
            $envelope.Format | Should -Be 'Text'
            $envelope.Sender | Should -BeOfType ([PsIpc.Transport.Sockets.UdpPeer])
            $envelope.SenderProcessId | Should -Be 0
            Send-IpcMessage $envelope.Sender 'only you'
            Read-PeerLine $py | Should -Be '0x10 only you'

            $c = Connect-IpcSocket -Udp -Port $srv.Port
            Send-IpcMessage $c 'from PsIpc'
            Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 10 | Should -Be 'from PsIpc'
            $srv.ClientCount | Should -Be 2
            Receive-IpcMessage $c -TimeoutSeconds 0.3 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty -Because 'the reply went to python only'

            Send-IpcMessage $srv 'everyone'
            Read-PeerLine $py | Should -Be '0x10 everyone'
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 10 | Should -Be 'everyone'
            $srv.MessagesSent | Should -Be 2
        }

        It 'JSON travels both ways; CliXml from a UDP peer is never deserialized' {
            $srv = Start-IpcSocketServer -Udp
            $c = Connect-IpcSocket -Udp -Port $srv.Port
            Send-IpcMessage $c ([pscustomobject]@{ Sneaky = 1 })     # CliXml (-Format Auto)
            Send-IpcMessage $c @{ a = 2 } -Format Json
            $received = Receive-IpcMessage $srv -Count 2 -TimeoutSeconds 10 -ErrorVariable errs -ErrorAction SilentlyContinue
            $errs.Count | Should -Be 1
            $errs[0].FullyQualifiedErrorId | Should -Be 'DecodeFailed,PsIpc.Commands.ReceiveIpcMessageCommand'
            $errs[0].Exception.Message | Should -Match 'UDP, which is unauthenticated'
            @($received).Count | Should -Be 1
            $received.a | Should -Be 2
        }

        It 'a script block gets JSON as objects, answers with JSON, and counts a CliXml request as a handler error' {
            $srv = Start-IpcSocketServer -Udp -ScriptBlock { param($m) [pscustomobject]@{ Sum = $m.a + $m.b } }
            $c = Connect-IpcSocket -Udp -Port $srv.Port
            Send-IpcMessage $c ([pscustomobject]@{ a = 1; b = 1 })
            Send-IpcMessage $c @{ a = 2; b = 3 } -Format Json
            $reply = Receive-IpcMessage $c -Count 1 -Envelope -TimeoutSeconds 10
            $reply.Format | Should -Be 'Json'
            $reply.Body.Sum | Should -Be 5
            Wait-Until { $srv.HandlerErrors -eq 1 } | Should -BeTrue
            $srv.RecentHandlerErrors[0].Message | Should -Match 'CliXml'
        }
    }

    Context 'Order of a script block''s replies' {
        It 'handles each client''s datagrams one at a time, in arrival order: three clients at once each get their echoes in the order sent' {
            # Several workers take the three clients' datagrams, interleaved, from the server's one queue; a random pause
            # in the handler would let a later datagram of a client overtake an earlier one if the server allowed it.
            # (Loopback neither reorders nor drops these few datagrams, so arrival order is sending order here.)
            $srv = Start-IpcSocketServer -Udp -ThrottleLimit 4 -ScriptBlock { param($m) Start-Sleep -Milliseconds (Get-Random -Maximum 10); $m }
            $clients = @(1..3 | ForEach-Object { Connect-IpcSocket -Udp -Port $srv.Port })
            foreach ($i in 1..40) { foreach ($k in 0..2) { Send-IpcMessage $clients[$k] "c$k-$i" } }
            foreach ($k in 0..2) {
                $echoes = @(Receive-IpcMessage $clients[$k] -Count 40 -TimeoutSeconds 60)
                $echoes | Should -Be @(1..40 | ForEach-Object { "c$k-$_" }) -Because "client $k's echoes come in the order of its datagrams"
            }
            $srv.DatagramsDropped | Should -Be 0
            $srv.Handler.Workers | Should -BeGreaterThan 1 -Because 'several workers served the three clients at once'
        }
    }

    Context 'Bad input' {
        It 'a message larger than one datagram fails with MessageTooLarge before anything is sent' {
            $srv = Start-IpcSocketServer -Udp
            $c = Connect-IpcSocket -Udp -Port $srv.Port
            $c.MaxDatagramMessage | Should -Be 65502
            $err = { Send-IpcMessage $c ([byte[]]::new(65503)) } | Should -Throw -ErrorId 'MessageTooLarge,PsIpc.Commands.SendIpcMessageCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'LimitsExceeded'
            $c.MessagesSent | Should -Be 0
            Send-IpcMessage $c ([byte[]]::new(65502))
            $envelope = Receive-IpcMessage $srv -Count 1 -Envelope -TimeoutSeconds 10
            $envelope.Size | Should -Be 65502
            { Send-IpcMessage $envelope.Sender ([byte[]]::new(65503)) } | Should -Throw -ErrorId 'MessageTooLarge,PsIpc.Commands.SendIpcMessageCommand'

            $rawServer = Start-IpcSocketServer -Udp -Framing Raw
            $rawServer.MaxDatagramMessage | Should -Be 65507
            $rawClient = Connect-IpcSocket -Udp -Port $rawServer.Port -Framing Raw
            { Send-IpcMessage $rawClient ([byte[]]::new(65508)) } | Should -Throw -ErrorId 'MessageTooLarge,PsIpc.Commands.SendIpcMessageCommand'
            Send-IpcMessage $rawClient ([byte[]]::new(65507))
            (Receive-IpcMessage $rawServer -Count 1 -TimeoutSeconds 10).Length | Should -Be 65507
        }

        It 'a datagram larger than -MaxMessageSize is dropped and counted, and the server goes on' {
            $srv = Start-IpcSocketServer -Udp -Framing Raw -MaxMessageSize 10 -ScriptBlock { param($m) "got $($m.Length)" }
            $py = Start-PythonPeer @'
s = udp_socket()
server = ('127.0.0.1', int(sys.argv[1]))
s.sendto(b'x' * 11, server)
s.sendto(b'y' * 10, server)
say(s.recvfrom(65535)[0].decode())
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be 'got 10'
            $srv.DroppedTooLarge | Should -Be 1
            $srv.DatagramsDropped | Should -Be 1
            $srv.Dropped | Should -Be 1 -Because 'the channel statistics count drops of every kind'
            $srv.LastDropError.Kind | Should -Be 'MessageTooLarge'
        }

        It 'garbage datagrams on LengthPrefixed are counted and never answered, and the server goes on' {
            $srv = Start-IpcSocketServer -Udp -ScriptBlock { param($m) "ok $m" }
            $py = Start-PythonPeer @'
s = udp_socket()
server = ('127.0.0.1', int(sys.argv[1]))
s.sendto(b'garbage', server)                                  # not a frame
s.sendto(hello(), server)                                     # no handshake over UDP
s.sendto(struct.pack('<IB', 10, TEXT) + b'abc', server)       # announces 10 bytes, carries 3
s.sendto(text('fine'), server)
kind, payload = udp_frame(s.recvfrom(65535)[0])
say(hex(kind), payload.decode())
s.settimeout(0.5)
try:
    s.recvfrom(65535)
    say('an answer to garbage')
except socket.timeout:
    say('nothing more')
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be '0x10 ok fine'
            Read-PeerLine $py | Should -Be 'nothing more'
            $srv.DroppedMalformed | Should -Be 3
            $srv.DatagramsDropped | Should -Be 3
            $srv.Statistics.Dropped | Should -Be 3
            $srv.LastDropError.Kind | Should -Be 'ProtocolError'
            $srv.HandlerErrors | Should -Be 0
            $srv.State | Should -Be 'Connected'
        }

        It 'without a handler, Receive-IpcMessage reports a garbage datagram as ProtocolError and goes on' {
            $srv = Start-IpcSocketServer -Udp
            $py = Start-PythonPeer @'
s = udp_socket()
server = ('127.0.0.1', int(sys.argv[1]))
s.sendto(b'garbage', server)
s.sendto(text('after'), server)
say('sent')
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be 'sent'
            Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 10 -ErrorVariable errs -ErrorAction SilentlyContinue | Should -Be 'after'
            $errs.Count | Should -Be 1
            $errs[0].FullyQualifiedErrorId | Should -Be 'ProtocolError,PsIpc.Commands.ReceiveIpcMessageCommand'
        }

        It 'counts a flood of garbage datagrams but reports at most one a second, so real messages still get through' {
            $srv = Start-IpcSocketServer -Udp
            $py = Start-PythonPeer @'
s = udp_socket()
server = ('127.0.0.1', int(sys.argv[1]))
for i in range(2000):
    s.sendto(b'garbage %d' % i, server)
    if i % 50 == 49:
        time.sleep(0.002)   # a flood, but not faster than the kernel's small default buffer lets a reader keep up
s.sendto(text('real'), server)
say('sent')
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be 'sent'
            Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 10 -ErrorVariable errs -ErrorAction SilentlyContinue | Should -Be 'real'
            $errs.Count | Should -BeLessThan 10 -Because 'one garbage datagram a second is reported, not each of the 2000'
            $errs.Count | Should -BeGreaterThan 0
            Wait-Until { $srv.DroppedMalformed + $srv.DroppedQueueFull -ge 1 } | Should -BeTrue
            $srv.DroppedMalformed | Should -BeGreaterThan 500 -Because 'the kernel may drop some of the 2000 datagrams; PsIpc counts every one it reads'
        }

        It 'fails with AddressInUse when the UDP port is taken' {
            $taken = [System.Net.Sockets.UdpClient]::new([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, 0))
            try {
                $port = $taken.Client.LocalEndPoint.Port
                $err = { Start-IpcSocketServer -Udp -Port $port } | Should -Throw -ErrorId 'AddressInUse,PsIpc.Commands.StartIpcSocketServerCommand' -PassThru
                $err.CategoryInfo.Category | Should -Be 'ResourceExists'
            }
            finally { $taken.Dispose() }
        }

        It 'fails closed with AuthenticationRequired for an address that is not loopback (<Address>)' -ForEach @(
            @{ Address = '0.0.0.0' }, @{ Address = '::' }
        ) {
            $err = { Start-IpcSocketServer -Udp -Address $Address } | Should -Throw -ErrorId 'AuthenticationRequired,PsIpc.Commands.StartIpcSocketServerCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'PermissionDenied'
            $err.Exception.Message | Should -Match 'UDP peers cannot be authenticated'
            @(Get-IpcSocketServer).Count | Should -Be 0
        }

        It 'a client whose server is not there gets ConnectionRefused from Receive-IpcMessage, not a hang' {
            $port = Get-FreeUdpPort
            $c = Connect-IpcSocket -Udp -Port $port
            $c.State | Should -Be 'Connected'
            Send-IpcMessage $c 'anyone there?'
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            { Receive-IpcMessage $c -Count 1 -TimeoutSeconds 2 -ErrorAction Stop } |
                Should -Throw -ErrorId 'ConnectionRefused,PsIpc.Commands.ReceiveIpcMessageCommand'
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 10 -Because 'the wait is bounded by -TimeoutSeconds (a safety net, not a timing claim)'
            $c.Refusals | Should -Be 1
            $c.State | Should -Be 'Connected' -Because 'a UDP server may start later'
        }
    }

    Context 'Lifetime' {
        It 'Get-IpcSocketServer lists a UDP server; Stop-IpcSocketServer stops its handler and releases the port' {
            $runspacesBefore = @(Get-Runspace).Count
            $srv = Start-IpcSocketServer -Udp -ThrottleLimit 2 -ScriptBlock { param($m) "echo $m" }
            $port = $srv.Port
            $c = Connect-IpcSocket -Udp -Port $port
            Send-IpcMessage $c 'one'
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 10 | Should -Be 'echo one'

            (Get-IpcSocketServer -Name $srv.Name).Port | Should -Be $port
            Get-IpcSocketServer | Where-Object Kind -EQ 'Udp' | Should -HaveCount 1
            Get-IpcChannel | Where-Object Name -EQ $srv.Name | Should -HaveCount 1
            ($srv | Format-Table | Out-String) | Should -Match 'Udp'

            $srv | Stop-IpcSocketServer
            $srv.State | Should -Be 'Closed'
            Get-IpcSocketServer | Should -BeNullOrEmpty
            Wait-Until { @(Get-Runspace).Count -eq $runspacesBefore } | Should -BeTrue

            $rebound = [System.Net.Sockets.UdpClient]::new([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, $port))
            $rebound.Dispose()
            $again = Start-IpcSocketServer -Udp -Port $port
            $again.Port | Should -Be $port
        }

        It 'serves ::1 (IPv6 loopback)' {
            $srv = Start-IpcSocketServer -Udp -Address ::1 -ScriptBlock { param($m) "v6 $m" }
            $srv.Address | Should -Be "[::1]:$($srv.Port)"
            $c = Connect-IpcSocket -Udp -ComputerName ::1 -Port $srv.Port
            Send-IpcMessage $c 'hi'
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 10 | Should -Be 'v6 hi'
        }

        It 'Ctrl+C stops a Receive-IpcMessage that waits on a UDP server at once' {
            $srv = Start-IpcSocketServer -Udp
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({ param($ModulePath, $Channel) Import-Module $ModulePath; Receive-IpcMessage -Channel $Channel }).
                    AddArgument($env:PSIPC_MODULE_PATH).AddArgument($srv)
                # Nothing was sent: the Receive waits, and is stopped once it does.
                $stop = Stop-WhenWaiting -PowerShell $ps -Channel $srv
                $stop.Handle.IsCompleted | Should -BeTrue
                $stop.State | Should -Be 'Stopped'
                $stop.Waiters | Should -Be 0 -Because 'the Receive no longer waits'
            }
            finally { $ps.Dispose() }
            $srv.State | Should -Be 'Listening' -Because 'stopping a reader does not stop the server'
        }
    }
}
