BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    function New-SocketTestDir {
        # A short private directory for Unix sockets (sun_path holds 107 bytes).
        $dir = Join-Path ([System.IO.Path]::GetTempPath()) ('psipcs-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
        Register-TestPath $dir
        $dir
    }
}

AfterAll {
    Clear-TestState
}

Describe 'Start-IpcSocketServer' {
    AfterEach {
        Clear-TestState
    }

    Context 'TCP' {
        It 'returns at once with the free port it took, and answers through a script block' {
            $srv = Start-IpcSocketServer -Port 0 -ScriptBlock { param($message) "ACK: $message" }
            $srv | Should -BeOfType ([PsIpc.Transport.Sockets.SocketServerChannel])
            $srv.Port | Should -BeGreaterThan 0
            $srv.Address | Should -Be "127.0.0.1:$($srv.Port)"
            $srv.State | Should -Be 'Listening'
            $srv.Kind | Should -Be 'Tcp'
            $srv.Handler.ThrottleLimit | Should -Be 8

            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            Send-IpcMessage $c 'Hello, IPC!'
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'ACK: Hello, IPC!'
            $srv.ClientCount | Should -Be 1
            $srv.MessagesReceived | Should -Be 1
            Wait-Until { $srv.MessagesSent -eq 1 } | Should -BeTrue
        }

        It 'without a script block: Receive merges clients, the envelope''s Sender replies to one, sending to the server reaches all' {
            $srv = Start-IpcSocketServer
            $a = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            $b = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            Send-IpcMessage $a 'from a'
            $envelope = Receive-IpcMessage $srv -Count 1 -Envelope -TimeoutSeconds 5
            $envelope.Body | Should -Be 'from a'
            $envelope.SenderProcessId | Should -Be $PID
            $envelope.Sender | Should -BeOfType ([PsIpc.Transport.Channels.IpcPeer])
            $envelope.Sender.Server | Should -Be $srv
            { $envelope | ConvertTo-Json -Depth 1 -WarningAction SilentlyContinue } | Should -Not -Throw

            Send-IpcMessage $envelope.Sender 'only a'
            Receive-IpcMessage $a -Count 1 -TimeoutSeconds 5 | Should -Be 'only a'
            Receive-IpcMessage $b -TimeoutSeconds 0.3 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty

            Wait-Until { $srv.ClientCount -eq 2 } | Should -BeTrue
            Send-IpcMessage $srv 'everyone'
            Receive-IpcMessage $a -Count 1 -TimeoutSeconds 5 | Should -Be 'everyone'
            Receive-IpcMessage $b -Count 1 -TimeoutSeconds 5 | Should -Be 'everyone'
        }

        It 'serves ::1 (IPv6 loopback)' {
            $srv = Start-IpcSocketServer -Address ::1 -ScriptBlock { param($m) "v6 $m" }
            $srv.Address | Should -Be "[::1]:$($srv.Port)"
            $c = Connect-IpcSocket -ComputerName ::1 -Port $srv.Port -TimeoutSeconds 5
            Send-IpcMessage $c 'hi'
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'v6 hi'
        }

        It 'fails with AddressInUse when the port is taken' {
            $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
            $listener.Start()
            try {
                $port = $listener.LocalEndpoint.Port
                $err = { Start-IpcSocketServer -Port $port } | Should -Throw -ErrorId 'AddressInUse,PsIpc.Commands.StartIpcSocketServerCommand' -PassThru
                $err.CategoryInfo.Category | Should -Be 'ResourceExists'
            }
            finally { $listener.Stop() }
        }

        It 'fails closed with AuthenticationRequired for an address that is not loopback' {
            $err = { Start-IpcSocketServer -Address 0.0.0.0 -Port 0 } | Should -Throw -ErrorId 'AuthenticationRequired,PsIpc.Commands.StartIpcSocketServerCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'PermissionDenied'
            $err.Exception.Message | Should -Match 'authentication'
            @(Get-IpcSocketServer).Count | Should -Be 0
        }

        It 'rejects an -Address that is not an IP address with InvalidAddress' {
            { Start-IpcSocketServer -Address 'not an address' } | Should -Throw -ErrorId 'InvalidAddress,PsIpc.Commands.StartIpcSocketServerCommand'
        }

        It 'refuses a client beyond -MaxConnections with ServerBusy, and takes one again when a client left' {
            $srv = Start-IpcSocketServer -MaxConnections 2
            $a = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            $b = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            Wait-Until { $srv.ClientCount -eq 2 } | Should -BeTrue
            { Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5 } | Should -Throw -ErrorId 'ServerBusy,PsIpc.Commands.ConnectIpcSocketCommand'
            $srv.ConnectionsRefused | Should -Be 1
            Close-IpcChannel $a
            Wait-Until { $srv.ClientCount -eq 1 } | Should -BeTrue
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            $c.State | Should -Be 'Connected'
        }
    }

    Context 'A plain client that shuts down its sending side (half-closed)' {
        It 'still gets every reply of its handler, then the end of the stream (<Framing>)' -ForEach @(
            @{ Framing = 'Line' }, @{ Framing = 'Raw' }) {
            $srv = Start-IpcSocketServer -Framing $Framing -ScriptBlock { param($m) Start-Sleep -Milliseconds 200; 'ACK' }
            # As `printf 'hello\n' | nc -N host port` does: send, shut down the sending side, read to the end.
            $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(b'hello\n')
s.shutdown(socket.SHUT_WR)
s.settimeout(20)
got = b''
while True:
    chunk = s.recv(100)
    if not chunk:
        break
    got += chunk
say(repr(got))
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -BeLike "b'ACK*'"
            Wait-Until { $srv.ClientCount -eq 0 } | Should -BeTrue
            $srv.MessagesReceived | Should -Be 1
            $srv.ConnectionErrors | Should -Be 0
        }

        It 'without a handler, a client''s end of input ends its connection and frees its slot' {
            $srv = Start-IpcSocketServer -Framing Line -MaxConnections 2 -IdleTimeoutSeconds 0
            $py = Start-PythonPeer @'
for i in range(5):
    s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
    s.sendall(b'line %d\n' % i)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(10)
    s.recv(10)   # the server ends the connection: b''
    s.close()
say('done')
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be 'done'
            $got = Receive-IpcMessage $srv -Count 5 -TimeoutSeconds 10
            $got | Should -Be 'line 0', 'line 1', 'line 2', 'line 3', 'line 4'
            $srv.ConnectionsRefused | Should -Be 0
            Wait-Until { $srv.ClientCount -eq 0 } | Should -BeTrue
        }
    }

    Context 'Script block handler' {
        It 'counts a handler that throws, tells the client (HandlerFailed), and goes on serving' {
            $srv = Start-IpcSocketServer -ScriptBlock { param($m) if ($m -eq 'bad') { throw "cannot handle $m" }; "ok $m" }
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            Send-IpcMessage $c 'bad'
            Send-IpcMessage $c 'good'
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 -ErrorAction SilentlyContinue -ErrorVariable failed | Should -Be 'ok good'
            $failed.FullyQualifiedErrorId | Should -Be 'HandlerFailed,PsIpc.Commands.ReceiveIpcMessageCommand'
            $failed.Exception.Message | Should -Be 'cannot handle bad'
            $srv.HandlerErrors | Should -Be 1
            $srv.RecentHandlerErrors[0].Message | Should -Be 'cannot handle bad'
            $srv.State | Should -Be 'Connected'
        }

        It 'counts a handler that writes an error, still sends what it output, then the error' {
            $srv = Start-IpcSocketServer -ScriptBlock { param($m) "before $m"; Write-Error "no good: $m"; "after $m" }
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            Send-IpcMessage $c 'x'
            Send-IpcMessage $c 'y'
            Receive-IpcMessage $c -Count 4 -TimeoutSeconds 5 -ErrorAction SilentlyContinue -ErrorVariable failed |
                Should -Be 'before x', 'after x', 'before y', 'after y'
            $failed[0].FullyQualifiedErrorId | Should -Be 'HandlerFailed,PsIpc.Commands.ReceiveIpcMessageCommand'
            $failed[0].Exception.Message | Should -Be 'no good: x'
            Wait-Until { $srv.HandlerErrors -eq 2 } | Should -BeTrue
            $srv.RecentHandlerErrors.Message | Should -Be 'no good: x', 'no good: y'
        }

        It 'replies in the order of the requests, each output item a message' {
            $srv = Start-IpcSocketServer -ThrottleLimit 4 -ScriptBlock { param($m) Start-Sleep -Milliseconds (Get-Random -Maximum 20); "$m-a"; "$m-b" }
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            1..10 | ForEach-Object { "r$_" } | Send-IpcMessage $c
            $replies = Receive-IpcMessage $c -Count 20 -TimeoutSeconds 10
            $replies | Should -Be (1..10 | ForEach-Object { "r$_-a"; "r$_-b" })
        }

        It 'gets JSON as objects and answers a TCP client''s objects as JSON' {
            $srv = Start-IpcSocketServer -ScriptBlock { param($m) [pscustomobject]@{ Sum = $m.a + $m.b } }
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            Send-IpcMessage $c @{ a = 2; b = 3 } -Format Json
            $e = Receive-IpcMessage $c -Count 1 -Envelope -TimeoutSeconds 5
            $e.Format | Should -Be 'Json'
            $e.Body.Sum | Should -Be 5
        }

        It 'serializes reply objects to -Depth, in JSON for a TCP client and CliXml for a Unix socket client' {
            $reply = { param($m) @{ L1 = @{ L2 = @{ L3 = @{ L4 = 'leaf' } } } } }
            $cut = Start-IpcSocketServer -ScriptBlock $reply
            $whole = Start-IpcSocketServer -ScriptBlock $reply -Depth 3
            $whole.Handler.Depth | Should -Be 3
            $c = Connect-IpcSocket -Port $cut.Port -TimeoutSeconds 5
            Send-IpcMessage $c 'x'
            $e = Receive-IpcMessage $c -Count 1 -Envelope -TimeoutSeconds 5
            $e.Format | Should -Be 'Json'
            $e.Body.L1.L2.L3 | Should -Be 'System.Collections.Hashtable'   # cut at the default depth 2
            $c = Connect-IpcSocket -Port $whole.Port -TimeoutSeconds 5
            Send-IpcMessage $c 'x'
            (Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5).L1.L2.L3.L4 | Should -Be 'leaf'

            $dir = New-SocketTestDir
            $unix = Start-IpcSocketServer -Path (Join-Path $dir 's.sock') -Depth 4 -ScriptBlock { param($path) [System.IO.DirectoryInfo]::new($path) }
            $c = Connect-IpcSocket -Path $unix.Path -TimeoutSeconds 5
            Send-IpcMessage $c '/tmp/a/b/c/d'
            $e = Receive-IpcMessage $c -Count 1 -Envelope -TimeoutSeconds 5
            $e.Format | Should -Be 'CliXml'
            $e.Body.Parent.Parent.Parent.Name | Should -Be 'a'   # the default depth 2 would make Parent.Parent its text
        }

        It 'closes its runspaces when the server stops' {
            $before = @(Get-Runspace).Count
            $srv = Start-IpcSocketServer -ThrottleLimit 3 -ScriptBlock { param($m) Start-Sleep -Milliseconds 50; $m }
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            1..3 | ForEach-Object { $cc = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5; Send-IpcMessage $cc "x$_"; $cc }
            Wait-Until { $srv.Handler.MessagesHandled -eq 3 } | Should -BeTrue
            Stop-IpcSocketServer $srv
            Wait-Until { @(Get-Runspace).Count -eq $before } | Should -BeTrue -Because "$(@(Get-Runspace).Count) runspaces, $before before"
        }
    }

    Context 'Bad input' {
        It 'closes a connection that sends garbage, reports it, and goes on' {
            $srv = Start-IpcSocketServer -ScriptBlock { param($m) "ok $m" }
            $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(hello() + struct.pack('<IB', 3, 0x7f) + b'xyz')
frames = []
while True:
    f = read_frame(s)
    if f is None: break
    frames.append(f)
say(' '.join(sorted('%d:%d' % (k, p[0] if k == ERROR else 0) for k, p in frames)))
'@ -ArgumentList $srv.Port
            # The server's Hello and an Error frame with code 2 (protocol error), in either order, then the end.
            Read-PeerLine $py | Should -Be '1:0 3:2'
            Wait-Until { $srv.ConnectionErrors -eq 1 } | Should -BeTrue
            $srv.LastConnectionError.Kind | Should -Be 'ProtocolError'
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            Send-IpcMessage $c 'still here'
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'ok still here'
        }

        It 'refuses an oversized frame before reading it (MessageTooLarge) and goes on' {
            $srv = Start-IpcSocketServer -MaxMessageSize 1KB
            $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(hello())
kind, payload = read_frame(s)
s.sendall(struct.pack('<IB', 2048, TEXT))
kind, payload = read_frame(s)
say(kind, payload[0])
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be '3 3'   # an Error frame with code 3
            Receive-IpcMessage $srv -TimeoutSeconds 5 -Count 1 -ErrorAction SilentlyContinue -ErrorVariable errs
            $errs[0].FullyQualifiedErrorId | Should -Be 'MessageTooLarge,PsIpc.Commands.ReceiveIpcMessageCommand'
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            Send-IpcMessage $c 'small'
            Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 5 | Should -Be 'small'
        }

        It 'reports a client killed in the middle of a frame as PeerDisconnected, after the messages before it' {
            $srv = Start-IpcSocketServer
            $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(hello())
read_frame(s)
s.sendall(text('whole') + struct.pack('<IB', 100, TEXT) + b'half')
say('sent')
hang()
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be 'sent'
            Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 5 | Should -Be 'whole'
            Stop-TestProcess $py
            Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 5 -ErrorAction SilentlyContinue -ErrorVariable errs
            $errs[0].FullyQualifiedErrorId | Should -Be 'PeerDisconnected,PsIpc.Commands.ReceiveIpcMessageCommand'
            $srv.State | Should -Be 'Listening'
        }

        It 'closes a connection whose first bytes look like HTTP, without an answer' -ForEach @(
            @{ Framing = 'LengthPrefixed' }, @{ Framing = 'Line' }, @{ Framing = 'Raw' }) {
            $srv = Start-IpcSocketServer -Framing $Framing -ScriptBlock { param($m) 'answered' }
            $py = Start-HttpProbe $srv.Port
            Read-PeerLine $py | Should -Be "b''"
            Wait-Until { $srv.ConnectionErrors -eq 1 } | Should -BeTrue
            $srv.LastConnectionError.Message | Should -Match 'HTTP'
            $srv.Handler.MessagesHandled | Should -Be 0
        }

        It 'does not decode CliXml from a TCP client (DecodeFailed), and goes on' {
            $srv = Start-IpcSocketServer
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
            Send-IpcMessage $c ([pscustomobject]@{ n = 1 })
            Send-IpcMessage $c 'after'
            $got = Receive-IpcMessage $srv -Count 2 -TimeoutSeconds 5 -ErrorAction SilentlyContinue -ErrorVariable errs
            $errs[0].FullyQualifiedErrorId | Should -Be 'DecodeFailed,PsIpc.Commands.ReceiveIpcMessageCommand'
            $errs[0].Exception.Message | Should -Match 'unauthenticated'
            $got | Should -Be 'after'
        }
    }

    Context 'Unix domain socket' {
        It 'refuses a directory other users may write to (AccessDenied), and accepts a sticky one such as /tmp' {
            $dir = New-SocketTestDir
            $null = New-Item -ItemType Directory -Path $dir
            & chmod 0777 $dir
            $err = { Start-IpcSocketServer -Path (Join-Path $dir 's.sock') } | Should -Throw -ErrorId 'AccessDenied,PsIpc.Commands.StartIpcSocketServerCommand' -PassThru
            $err.Exception.Message | Should -Match 'written by other users'
            Test-Path -LiteralPath (Join-Path $dir 's.sock') | Should -BeFalse

            & chmod 0333 $dir   # writable by others and not even listable: still looked at, still refused
            { Start-IpcSocketServer -Path (Join-Path $dir 's.sock') } | Should -Throw -ErrorId 'AccessDenied,PsIpc.Commands.StartIpcSocketServerCommand'

            & chmod 1777 $dir   # sticky: others cannot remove or rename what is ours
            $srv = Start-IpcSocketServer -Path (Join-Path $dir 's.sock')
            $srv.State | Should -Be 'Listening'
        }

        It 'creates the socket 0600 in a new 0700 directory, serves it and deletes it when stopped' {
            $dir = New-SocketTestDir
            $path = Join-Path $dir 's.sock'
            $srv = Start-IpcSocketServer -Path $path -ScriptBlock { param($m) [pscustomobject]@{ Echo = $m } }
            $srv.Kind | Should -Be 'Unix'
            $srv.Address | Should -Be $path
            (& stat -c '%a %F' $path) | Should -Be '600 socket'
            (& stat -c '%a' $dir) | Should -Be '700'

            $c = Connect-IpcSocket -Path $path -TimeoutSeconds 5
            Send-IpcMessage $c 'over unix'
            $reply = Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5
            $reply.Echo | Should -Be 'over unix'   # CliXml: a Unix socket peer is of this user (uid checked)
            Stop-IpcSocketServer $srv
            Test-Path -LiteralPath $path | Should -BeFalse
        }

        It 'replaces a stale socket file, and refuses a path another server holds with AddressInUse' {
            $dir = New-SocketTestDir
            $path = Join-Path $dir 's.sock'
            $null = New-Item -ItemType Directory -Path $dir
            # A server that died: its socket file stays, nobody listens on it.
            & $script:Python -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' $path
            Test-Path -LiteralPath $path | Should -BeTrue

            $srv = Start-IpcSocketServer -Path $path
            $srv.State | Should -Be 'Listening'
            { Start-IpcSocketServer -Path $path } | Should -Throw -ErrorId 'AddressInUse,PsIpc.Commands.StartIpcSocketServerCommand'
            $c = Connect-IpcSocket -Path $path -TimeoutSeconds 5
            $c.State | Should -Be 'Connected'
        }

        It 'fails with SocketPathTooLong for a path beyond sun_path' {
            $path = Join-Path ([System.IO.Path]::GetTempPath()) (('d' * 60) + '/' + ('s' * 60) + '.sock')
            { Start-IpcSocketServer -Path $path } | Should -Throw -ErrorId 'SocketPathTooLong,PsIpc.Commands.StartIpcSocketServerCommand'
            { Connect-IpcSocket -Path $path } | Should -Throw -ErrorId 'SocketPathTooLong,PsIpc.Commands.ConnectIpcSocketCommand'
        }
    }

    Context 'Line and Raw framing, for programs that know nothing of PsIpc' {
        It 'Raw: a plain Python client that sends b"Hello, IPC!" and reads recv(1024) gets the reply' {
            $srv = Start-IpcSocketServer -Framing Raw -ScriptBlock { param($message) 'ACK: ' + [System.Text.Encoding]::UTF8.GetString($message) }
            $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(b"Hello, IPC!")
say(s.recv(1024).decode())
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be 'ACK: Hello, IPC!'
        }

        It 'Line: each line is a message, each reply a line' {
            $srv = Start-IpcSocketServer -Framing Line -ScriptBlock { param($message) $message.ToUpper() }
            $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
f = s.makefile('rwb')
f.write(b'one\ntwo\r\n'); f.flush()
say(f.readline().decode().rstrip('\n'), f.readline().decode().rstrip('\n'))
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be 'ONE TWO'
        }

        It 'Line: a PsIpc client talks to a plain Python line server' {
            $py = Start-PythonPeer @'
import socketserver
class H(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(b'py:' + line)
srv = socketserver.TCPServer(('127.0.0.1', 0), H)
say(srv.server_address[1])
srv.handle_request()
'@
            $port = [int](Read-PeerLine $py)
            $c = Connect-IpcSocket -Port $port -Framing Line -TimeoutSeconds 5
            'a', 'b' | Send-IpcMessage $c
            Receive-IpcMessage $c -Count 2 -TimeoutSeconds 5 | Should -Be 'py:a', 'py:b'
        }

        It 'Line: closes a connection whose line exceeds -MaxMessageSize, and goes on' {
            $srv = Start-IpcSocketServer -Framing Line -MaxMessageSize 16 -ScriptBlock { param($m) "ok $m" }
            $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(b'x' * 100)
say(repr(s.recv(1024)))
'@ -ArgumentList $srv.Port
            Read-PeerLine $py | Should -Be "b''"
            $srv.LastConnectionError.Kind | Should -Be 'MessageTooLarge'
            $c = Connect-IpcSocket -Port $srv.Port -Framing Line -TimeoutSeconds 5
            Send-IpcMessage $c 'short'
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'ok short'
        }
    }
}
