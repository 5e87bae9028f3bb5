<#
    What each side reports when the other breaks off the handshake, with the ids the help names:
    a client that connects and says nothing, and a server that does not know the shared secret.
    The misbehaving peer is a raw .NET socket or a small Python server, so nothing of PsIpc hides
    what travels on the wire.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    function Read-Frames {
        # The frames in a byte string (the 5-byte header of docs/protocol.md 2, then the payload):
        # Type and Payload of each; a trailing partial frame is returned as Type -1.
        param([byte[]] $Bytes)
        $at = 0
        while ($at -lt $Bytes.Length) {
            if ($Bytes.Length - $at -lt 5) { return [pscustomobject]@{ Type = -1; Payload = [byte[]]$Bytes[$at..($Bytes.Length - 1)] } }
            $length = [System.BitConverter]::ToUInt32($Bytes, $at)
            $end = $at + 5 + $length
            if ($end -gt $Bytes.Length) { return [pscustomobject]@{ Type = -1; Payload = [byte[]]$Bytes[$at..($Bytes.Length - 1)] } }
            $payload = if ($length) { [byte[]]$Bytes[($at + 5)..($end - 1)] } else { [byte[]]@() }
            [pscustomobject]@{ Type = [int]$Bytes[$at + 4]; Payload = $payload }
            $at = $end
        }
    }
}

AfterAll {
    Clear-TestState
}

Describe 'A client that connects and never finishes the handshake' {
    AfterEach {
        Clear-TestState
    }

    It 'is reported by the pipe server''s Receive-IpcMessage as HandshakeTimeout, and disconnected without a frame' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $raw = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::Unix, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Unspecified)
        try {
            $raw.Connect([System.Net.Sockets.UnixDomainSocketEndPoint]::new((Get-PipePath -Name $server.Name)))
            # A pipe server gives a client 10 s to send its Hello (docs/protocol.md 3); this one sends nothing.
            # -TimeoutSeconds is a safety net: the error ends the wait as soon as the server reports it.
            $err = { Receive-IpcMessage -Channel $server -TimeoutSeconds 120 -ErrorAction Stop } |
                Should -Throw -ErrorId 'HandshakeTimeout,PsIpc.Commands.ReceiveIpcMessageCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'OperationTimeout'
            $err.TargetObject | Should -Be $server.Name

            $raw.ReceiveTimeout = 30000
            $buffer = [byte[]]::new(64)
            $raw.Receive($buffer) | Should -Be 0 -Because 'the server closes the connection without writing a frame'
            $server.ClientsAccepted | Should -Be 0 -Because 'a client that never said Hello does not count against -MaxClients'
        }
        finally {
            $raw.Dispose()
        }
    }

    It 'is reported by a socket server''s Receive-IpcMessage as HandshakeTimeout after -HandshakeTimeoutSeconds' {
        $server = Start-IpcSocketServer -HandshakeTimeoutSeconds 1
        $raw = [System.Net.Sockets.TcpClient]::new()
        try {
            $raw.Connect([System.Net.IPAddress]::Loopback, $server.Port)
            $err = { Receive-IpcMessage -Channel $server -TimeoutSeconds 60 -ErrorAction Stop } |
                Should -Throw -ErrorId 'HandshakeTimeout,PsIpc.Commands.ReceiveIpcMessageCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'OperationTimeout'
            $server.LastConnectionError.Kind | Should -Be 'HandshakeTimeout'

            $raw.Client.ReceiveTimeout = 30000
            $raw.Client.Receive([byte[]]::new(64)) | Should -Be 0 -Because 'the server closes the connection without writing a frame'
        }
        finally {
            $raw.Dispose()
        }
    }
}

Describe 'A server that does not know the shared secret' {
    AfterEach {
        Clear-TestState
    }

    It 'gets nothing from the client after its wrong proof; the client reports AuthenticationFailed' {
        $secret = ConvertTo-SecureString 'the client''s secret, which the server does not know' -AsPlainText -Force
        # A fake server speaking docs/protocol.md 11 with another secret: it reads the AuthRequest, answers with a
        # server nonce and a proof made with its own key, then records every byte the client sends until it closes.
        $fake = Start-PythonPeer @'
import hashlib, hmac
key = hashlib.pbkdf2_hmac('sha256', b'another secret of the fake server', b'PsIpc shared secret v1', 100000)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(('127.0.0.1', 0))
srv.listen(1)
say(srv.getsockname()[1])
conn, _ = srv.accept()
conn.settimeout(60)
kind, request = read_frame(conn)
say('request', kind, len(request))
server_nonce = os.urandom(32)
proof = hmac.new(key, b'PSIPC-AUTH-SERVER' + request[1:33] + server_nonce, hashlib.sha256).digest()
conn.sendall(frame(0x05, server_nonce + proof))
after = b''
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    after += chunk
say('after', after.hex())
'@
        $port = [int](Read-PeerLine $fake)

        $err = { Connect-IpcSocket -Port $port -Secret $secret -TimeoutSeconds 30 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AuthenticationFailed,PsIpc.Commands.ConnectIpcSocketCommand' -PassThru
        $err.CategoryInfo.Category | Should -Be 'AuthenticationError'
        $err.Exception.Message | Should -Match 'proof'

        Read-PeerLine $fake | Should -Be 'request 4 33' -Because 'the client starts with an AuthRequest: version and a 32-byte nonce'
        $line = Read-PeerLine $fake -TimeoutSeconds 60
        $line | Should -Match '^after [0-9a-f]*$'
        $after = [System.Convert]::FromHexString($line.Substring('after '.Length))
        # No AuthResponse (the client's own proof), no Hello, no message: only the Error frame that says why.
        $frames = @(Read-Frames $after)
        $frames.Count | Should -Be 1 -Because "the client sent $($after.Length) bytes after the wrong proof: $($frames.Type -join ', ')"
        $frames[0].Type | Should -Be 0x03 -Because 'the one frame is an Error frame'
        $frames[0].Payload[0] | Should -Be 7 -Because 'its code is 7, authentication failed'
    }
}
