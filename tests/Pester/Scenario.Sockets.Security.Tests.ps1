BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    $script:Secret = ConvertTo-SecureString 'correct horse battery staple' -AsPlainText -Force
    # Another secret long enough to be taken (16 characters at least), so that the server decides.
    $script:WrongSecret = ConvertTo-SecureString 'Tr0ub4dor&3, not the secret' -AsPlainText -Force
    $script:ReferenceClient = Join-Path $RepoRoot 'examples/psipc_client.py'

    function New-TestCertificate {
        # A self-signed certificate with its private key, as a user would make one for a test server.
        $rsa = [System.Security.Cryptography.RSA]::Create(2048)
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new(
            'CN=localhost', $rsa, [System.Security.Cryptography.HashAlgorithmName]::SHA256,
            [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
        $cert = $request.CreateSelfSigned([datetimeoffset]::Now.AddMinutes(-5), [datetimeoffset]::Now.AddDays(1))
        # Through PFX, so that the key is usable by SslStream on every platform.
        [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($cert.Export('Pfx'))
    }

    function Invoke-ReferenceClient {
        # examples/psipc_client.py, a real python3 process; the secret is passed in the environment.
        param([string[]] $Arguments, [string] $SecretText)
        $env:PSIPC_TEST_SECRET = $SecretText
        try {
            $output = & $script:Python -B $script:ReferenceClient @Arguments --secret-env PSIPC_TEST_SECRET 2>&1
            [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output | ForEach-Object { "$_" }) -join "`n" }
        }
        finally {
            Remove-Item Env:PSIPC_TEST_SECRET -ErrorAction SilentlyContinue
        }
    }

    $script:Certificate = New-TestCertificate
}

AfterAll {
    Clear-TestState
}

Describe 'Socket security: shared secret (-Secret)' {
    AfterEach {
        Clear-TestState
    }

    It 'serves a client that knows the secret; both ends count as authenticated' {
        $srv = Start-IpcSocketServer -Secret $Secret -ScriptBlock { param($m) "ACK: $m" }
        $srv.RequiresSecret | Should -BeTrue
        $c = Connect-IpcSocket -Port $srv.Port -Secret $Secret -TimeoutSeconds 5
        $c.IsAuthenticated | Should -BeTrue
        $c.IsEncrypted | Should -BeFalse
        Send-IpcMessage $c 'Hello, IPC!'
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'ACK: Hello, IPC!'
    }

    It 'decodes CliXml from a client that proved the secret (an unauthenticated TCP client gets DecodeFailed)' {
        $srv = Start-IpcSocketServer -Secret $Secret
        $c = Connect-IpcSocket -Port $srv.Port -Secret $Secret -TimeoutSeconds 5
        Send-IpcMessage $c ([pscustomobject]@{ Name = 'disk'; Free = 42 })
        $got = Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 5 -Envelope
        $got.Sender.IsAuthenticated | Should -BeTrue
        $got.Body.Name | Should -Be 'disk'
        $got.Body.Free | Should -Be 42
    }

    It 'takes the secret as a credential too' {
        $credential = [pscredential]::new('ignored', $Secret)
        $srv = Start-IpcSocketServer -Secret $credential -ScriptBlock { param($m) "cred $m" }
        $c = Connect-IpcSocket -Port $srv.Port -Secret $credential -TimeoutSeconds 5
        Send-IpcMessage $c 'ok'
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'cred ok'
    }

    It 'refuses a secret given as plain text, before anything starts' {
        { Start-IpcSocketServer -Secret 'plain text' } | Should -Throw -ErrorId 'ParameterArgumentTransformationError,PsIpc.Commands.StartIpcSocketServerCommand'
        @(Get-IpcSocketServer).Count | Should -Be 0
    }

    It 'refuses a secret shorter than 16 characters on both ends (SecretTooShort), before anything starts' {
        $short = ConvertTo-SecureString ('s' * 15) -AsPlainText -Force
        $err = { Start-IpcSocketServer -Secret $short } |
            Should -Throw -ErrorId 'SecretTooShort,PsIpc.Commands.StartIpcSocketServerCommand' -PassThru
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.Exception.Message | Should -Match 'at least 16'
        @(Get-IpcSocketServer).Count | Should -Be 0

        $srv = Start-IpcSocketServer -Secret $Secret
        { Connect-IpcSocket -Port $srv.Port -Secret $short -TimeoutSeconds 5 } |
            Should -Throw -ErrorId 'SecretTooShort,PsIpc.Commands.ConnectIpcSocketCommand'
        $srv.ConnectionsAccepted + $srv.ConnectionsRefused + $srv.ConnectionErrors | Should -Be 0 -Because 'the client refused its secret before connecting'
    }

    It 'takes a secret of exactly 16 characters' {
        $sixteen = ConvertTo-SecureString ('s' * 16) -AsPlainText -Force
        $srv = Start-IpcSocketServer -Secret $sixteen -ScriptBlock { param($m) "ACK: $m" }
        $c = Connect-IpcSocket -Port $srv.Port -Secret $sixteen -TimeoutSeconds 5
        Send-IpcMessage $c 'sixteen'
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'ACK: sixteen'
    }

    It 'refuses a wrong secret with AuthenticationFailed on both sides, and goes on serving' {
        $srv = Start-IpcSocketServer -Secret $Secret -ScriptBlock { param($m) "ACK: $m" }
        $err = { Connect-IpcSocket -Port $srv.Port -Secret $WrongSecret -TimeoutSeconds 5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AuthenticationFailed,PsIpc.Commands.ConnectIpcSocketCommand' -PassThru
        $err.CategoryInfo.Category | Should -Be 'AuthenticationError'
        Wait-Until { $srv.ConnectionsRefused -eq 1 } | Should -BeTrue
        $srv.LastConnectionError.Kind | Should -Be 'AuthenticationFailed'
        $srv.ConnectionsAccepted | Should -Be 0
        $srv.Handler.MessagesHandled | Should -Be 0

        $c = Connect-IpcSocket -Port $srv.Port -Secret $Secret -TimeoutSeconds 5
        Send-IpcMessage $c 'still here'
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'ACK: still here'
    }

    It 'refuses a client without the secret with AuthenticationRequired' {
        $srv = Start-IpcSocketServer -Secret $Secret
        { Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AuthenticationRequired,PsIpc.Commands.ConnectIpcSocketCommand'
        Wait-Until { $srv.ConnectionsRefused -eq 1 } | Should -BeTrue
        $srv.LastConnectionError.Kind | Should -Be 'AuthenticationRequired'
    }

    It 'tells a client that a server busy with handshakes is full (ServerBusy), not that its secret failed' {
        $srv = Start-IpcSocketServer -Secret $Secret -MaxConnections 1 -HandshakeTimeoutSeconds 30
        # The server runs in this process: a connection it has accepted is a socket descriptor of ours.
        $sockets = { @(Get-ChildItem -LiteralPath "/proc/$PID/fd" -ErrorAction SilentlyContinue | Where-Object { $_.LinkTarget -like 'socket:*' }).Count }
        $before = & $sockets
        # Two silent clients: handshakes in progress are bounded to twice -MaxConnections.
        $silent = Start-PythonPeer @'
a = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
b = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
say('connected')
hang()
'@ -ArgumentList $srv.Port
        Read-PeerLine $silent | Should -Be 'connected'
        # The kernel completes a connection before the server accepts it: wait until both are the server's.
        Wait-Until { (& $sockets) -ge $before + 2 } -TimeoutSeconds 60 | Should -BeTrue -Because 'the server accepts both silent clients'
        { Connect-IpcSocket -Port $srv.Port -Secret $Secret -TimeoutSeconds 5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'ServerBusy,PsIpc.Commands.ConnectIpcSocketCommand'
        $srv.ConnectionsRefused | Should -Be 1
    }

    It 'tells a client with a secret that the server has none (AuthenticationFailed)' {
        $srv = Start-IpcSocketServer
        $err = { Connect-IpcSocket -Port $srv.Port -Secret $Secret -TimeoutSeconds 5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AuthenticationFailed,PsIpc.Commands.ConnectIpcSocketCommand' -PassThru
        $err.Exception.Message | Should -Match 'does not expect a shared secret'
    }

    It 'serves a non-loopback address (0.0.0.0) once a secret is given' {
        $srv = Start-IpcSocketServer -Address 0.0.0.0 -Secret $Secret -ScriptBlock { param($m) "any $m" }
        $srv.Address | Should -Be "0.0.0.0:$($srv.Port)"
        $c = Connect-IpcSocket -ComputerName 127.0.0.1 -Port $srv.Port -Secret $Secret -TimeoutSeconds 5
        Send-IpcMessage $c 'x'
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'any x'
    }

    It 'works with Line framing: the exchange comes first, then plain lines' {
        $srv = Start-IpcSocketServer -Secret $Secret -Framing Line -ScriptBlock { param($m) $m.ToUpperInvariant() }
        $c = Connect-IpcSocket -Port $srv.Port -Secret $Secret -Framing Line -TimeoutSeconds 5
        Send-IpcMessage $c 'shout'
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'SHOUT'
    }

    It 'refuses a plain program that writes a line instead of the exchange (AuthenticationRequired)' {
        $srv = Start-IpcSocketServer -Secret $Secret -Framing Line -ScriptBlock { param($m) "never $m" }
        $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(b'hello\n')
reply = read_frame(s)
say(reply[0], reply[1][0])
'@ -ArgumentList $srv.Port
        Read-PeerLine $py | Should -Be '3 6'   # an Error frame, code 6: authentication required
        Wait-Until { $srv.ConnectionsRefused -eq 1 } | Should -BeTrue
        $srv.LastConnectionError.Kind | Should -Be 'AuthenticationRequired'
        $srv.Handler.MessagesHandled | Should -Be 0
    }

    It 'closes a client that sends HTTP instead of the exchange, without a byte (<Mode>)' -ForEach @(
        @{ Mode = 'secret' }, @{ Mode = 'TLS' }) {
        $srv = if ($Mode -eq 'TLS') { Start-IpcSocketServer -Certificate $Certificate } else { Start-IpcSocketServer -Secret $Secret }
        $py = Start-HttpProbe $srv.Port
        Read-PeerLine $py | Should -Be "b''"
        Wait-Until { $srv.ConnectionErrors -eq 1 } | Should -BeTrue
        $srv.LastConnectionError.Message | Should -Match 'HTTP'
    }

    It 'the Python reference client (a real python3 process) proves the secret and gets its reply; a wrong one exits 1' {
        $srv = Start-IpcSocketServer -Secret $Secret -ScriptBlock { param($m) "py: $m" }
        $ok = Invoke-ReferenceClient -SecretText 'correct horse battery staple' -Arguments "127.0.0.1:$($srv.Port)", '--tcp', '--text', 'hi', '--receive', '1'
        $ok.ExitCode | Should -Be 0 -Because $ok.Output
        $ok.Output | Should -Match 'got  Text   py: hi'

        $bad = Invoke-ReferenceClient -SecretText 'a wrong secret, long enough' -Arguments "127.0.0.1:$($srv.Port)", '--tcp', '--text', 'hi', '--receive', '1'
        $bad.ExitCode | Should -Be 1
        $bad.Output | Should -Match 'shared secret does not match'
        Wait-Until { $srv.ConnectionsRefused -eq 1 } | Should -BeTrue
    }
}

Describe 'Socket security: TLS (-Certificate, -UseTls)' {
    AfterEach {
        Clear-TestState
    }

    It 'encrypts with a certificate the client pins by thumbprint' {
        $srv = Start-IpcSocketServer -Certificate $Certificate -ScriptBlock { param($m) "tls $m" }
        $srv.UsesTls | Should -BeTrue
        $c = Connect-IpcSocket -Port $srv.Port -CertificateThumbprint $Certificate.Thumbprint -TimeoutSeconds 5
        $c.IsEncrypted | Should -BeTrue
        $c.IsAuthenticated | Should -BeFalse   # TLS alone proves the server, not the client
        Send-IpcMessage $c 'secret stuff'
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'tls secret stuff'
    }

    It 'refuses an untrusted certificate with AuthenticationFailed and names its thumbprint' {
        $srv = Start-IpcSocketServer -Certificate $Certificate
        $err = { Connect-IpcSocket -Port $srv.Port -UseTls -TimeoutSeconds 5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AuthenticationFailed,PsIpc.Commands.ConnectIpcSocketCommand' -PassThru
        $err.Exception.Message | Should -Match $Certificate.Thumbprint
        $err.Exception.Message | Should -Match 'CertificateThumbprint'
    }

    It 'refuses a pinned thumbprint that is not the server''s' {
        $srv = Start-IpcSocketServer -Certificate $Certificate
        $other = New-TestCertificate
        { Connect-IpcSocket -Port $srv.Port -CertificateThumbprint $other.Thumbprint -TimeoutSeconds 5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AuthenticationFailed,PsIpc.Commands.ConnectIpcSocketCommand'
    }

    It 'fails with AuthenticationFailed when the client wants TLS and the server does not speak it' {
        $srv = Start-IpcSocketServer
        $err = { Connect-IpcSocket -Port $srv.Port -UseTls -TimeoutSeconds 5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AuthenticationFailed,PsIpc.Commands.ConnectIpcSocketCommand' -PassThru
        $err.Exception.Message | Should -Match '-Certificate'
    }

    It 'combines TLS and the secret; a client without TLS is refused' {
        $srv = Start-IpcSocketServer -Certificate $Certificate -Secret $Secret -ScriptBlock { param($m) "both $m" }
        $c = Connect-IpcSocket -Port $srv.Port -CertificateThumbprint $Certificate.Thumbprint -Secret $Secret -TimeoutSeconds 5
        $c.IsEncrypted | Should -BeTrue
        $c.IsAuthenticated | Should -BeTrue
        Send-IpcMessage $c 'x'
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'both x'

        $err = { Connect-IpcSocket -Port $srv.Port -Secret $Secret -TimeoutSeconds 5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AuthenticationFailed,PsIpc.Commands.ConnectIpcSocketCommand' -PassThru
        $err.Exception.Message | Should -Match 'UseTls'
    }

    It 'the Python reference client speaks TLS (ssl module, pinned thumbprint) and the secret' {
        $srv = Start-IpcSocketServer -Certificate $Certificate -Secret $Secret -ScriptBlock { param($m) "py tls: $m" }
        $result = Invoke-ReferenceClient -SecretText 'correct horse battery staple' -Arguments "127.0.0.1:$($srv.Port)", '--tcp', '--thumbprint', $Certificate.Thumbprint, '--text', 'hi', '--receive', '1'
        $result.ExitCode | Should -Be 0 -Because $result.Output
        $result.Output | Should -Match 'got  Text   py tls: hi'
    }

    It 'rejects a certificate without its private key (CertificateWithoutPrivateKey)' {
        $public = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($Certificate.Export('Cert'))
        { Start-IpcSocketServer -Certificate $public } | Should -Throw -ErrorId 'CertificateWithoutPrivateKey,PsIpc.Commands.StartIpcSocketServerCommand'
        @(Get-IpcSocketServer).Count | Should -Be 0
    }
}

Describe 'Socket limits: handshake and idle timeouts' {
    AfterEach {
        Clear-TestState
    }

    It 'disconnects a client that trickles its handshake past -HandshakeTimeoutSeconds (HandshakeTimeout), while serving others' {
        $srv = Start-IpcSocketServer -Secret $Secret -HandshakeTimeoutSeconds 1 -ScriptBlock { param($m) "ok $m" }
        $srv.HandshakeTimeoutSeconds | Should -Be 1
        $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
say('connected')
start = time.monotonic()
try:
    for b in frame(0x04, bytes(33)):       # one byte of an AuthRequest every 0.3 s
        s.sendall(bytes([b]))
        time.sleep(0.3)
    say('not closed', s.recv(100))
except OSError as e:
    say('closed after %.1f s' % (time.monotonic() - start))
'@ -ArgumentList $srv.Port
        Read-PeerLine $py | Should -Be 'connected'
        $c = Connect-IpcSocket -Port $srv.Port -Secret $Secret -TimeoutSeconds 5
        Send-IpcMessage $c 'meanwhile'
        Receive-IpcMessage $c -Count 1 -TimeoutSeconds 5 | Should -Be 'ok meanwhile'
        Read-PeerLine $py -TimeoutSeconds 20 | Should -Match '^closed after'
        Wait-Until { $srv.LastConnectionError.Kind -eq 'HandshakeTimeout' } | Should -BeTrue
    }

    It 'closes a Line client that trickles bytes without a newline past -IdleTimeoutSeconds' {
        $srv = Start-IpcSocketServer -Framing Line -IdleTimeoutSeconds 1
        $srv.IdleTimeoutSeconds | Should -Be 1
        $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.settimeout(20)
start = time.monotonic()
try:
    for i in range(60):                    # a byte every 0.25 s, never a whole line
        s.sendall(b'x')
        time.sleep(0.25)
    say('not closed')
except OSError:
    say('closed after %.1f s' % (time.monotonic() - start))
'@ -ArgumentList $srv.Port
        Read-PeerLine $py -TimeoutSeconds 20 | Should -Match '^closed after'
        Wait-Until { $srv.IdleConnectionsClosed -eq 1 } | Should -BeTrue
        $srv.LastConnectionError.Kind | Should -Be 'IdleTimeout'
        $srv.ClientCount | Should -Be 0
    }

    It 'drops a half-open connection: a client that stopped (no FIN, no reads) is closed at the idle timeout' {
        $srv = Start-IpcSocketServer -IdleTimeoutSeconds 1
        $py = Start-PythonPeer @'
import signal
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(hello())
read_frame(s)
say('handshaken')
os.kill(os.getpid(), signal.SIGSTOP)   # as if its machine vanished: the socket stays, nobody answers
'@ -ArgumentList $srv.Port
        Read-PeerLine $py | Should -Be 'handshaken'
        Wait-Until { $srv.ClientCount -eq 1 } | Should -BeTrue
        Wait-Until { $srv.IdleConnectionsClosed -eq 1 } -TimeoutSeconds 15 | Should -BeTrue
        $srv.ClientCount | Should -Be 0
        $srv.LastConnectionError.Kind | Should -Be 'IdleTimeout'
    }

    It 'tells an idle PsIpc client why it was closed (IdleTimeout on its next Receive)' {
        $srv = Start-IpcSocketServer -IdleTimeoutSeconds 1
        $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
        { Receive-IpcMessage $c -Count 1 -TimeoutSeconds 10 -ErrorAction Stop } |
            Should -Throw -ErrorId 'IdleTimeout,PsIpc.Commands.ReceiveIpcMessageCommand'
        $srv.IdleConnectionsClosed | Should -Be 1
    }

    It 'keeps a connection that exchanges messages, and -IdleTimeoutSeconds 0 never closes' {
        # A reference: a connection of a server with the same 1 s idle timeout that says nothing. Its closing
        # shows, by state rather than by a clock, that more than the idle timeout has passed.
        $idle = Start-IpcSocketServer -IdleTimeoutSeconds 1
        $never = Start-IpcSocketServer -IdleTimeoutSeconds 0
        $never.IdleTimeoutSeconds | Should -Be 0
        $srv = Start-IpcSocketServer -IdleTimeoutSeconds 1 -ScriptBlock { param($m) $m }
        $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 5
        $n = Connect-IpcSocket -Port $never.Port -TimeoutSeconds 5
        $null = Connect-IpcSocket -Port $idle.Port -TimeoutSeconds 5
        # Exchange messages until the reference was closed, and three more times after that.
        $i = 0
        $after = 0
        while ($after -lt 3) {
            $i++
            Send-IpcMessage $c "tick $i"
            Receive-IpcMessage $c -Count 1 -TimeoutSeconds 30 | Should -Be "tick $i"
            if ($idle.IdleConnectionsClosed -eq 1) { $after++ }
            $i | Should -BeLessThan 100000 -Because 'the silent reference connection is closed at its idle timeout'
        }
        $srv.IdleConnectionsClosed | Should -Be 0 -Because 'a connection that exchanges messages is never idle'
        $n.State | Should -Be 'Connected' -Because '-IdleTimeoutSeconds 0 never closes, though the reference timed out meanwhile'
        $never.IdleConnectionsClosed | Should -Be 0
    }
}
