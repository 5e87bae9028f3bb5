<#
    Raw framing handing text instead of bytes (issue 11, item 3): Receive-IpcMessage -Encoding, against peers
    that know nothing of PsIpc: a python3 program over TCP, a plain .NET NamedPipeServerStream, a .NET TCP client.
    A character split between two reads must come out whole; a read that held only the start of a character
    writes nothing and is not counted by -Count.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Receive-IpcMessage -Encoding on Raw channels' {
    AfterEach {
        Clear-TestState
    }

    It 'decodes what a python3 TCP client sends, a character split between two sends coming out whole' {
        $srv = Start-IpcSocketServer -Port 0 -Framing Raw
        # The client sends 'Gr' and the first byte of 'ü', waits for the server's go, then sends the rest: two reads.
        $py = Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.settimeout(60)
data = 'Grüße, IPC!'.encode('utf-8')
s.sendall(data[:3])
say('first')
go = s.recv(1024)
s.sendall(data[3:])
say('second', go.decode('utf-8'))
s.recv(1024)
'@ -ArgumentList $srv.Port
        Read-PeerLine $py | Should -Be 'first'
        $first = Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 30 -Envelope -Encoding utf8
        $first.Body | Should -BeExactly 'Gr' -Because 'the byte that starts ü waits for the rest of its character'
        $first.Format | Should -Be 'Bytes' -Because 'the envelope tells how the message came'
        Send-IpcMessage $first.Sender 'go'
        Read-PeerLine $py | Should -Be 'second go'
        Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 30 -Encoding utf8 | Should -BeExactly 'üße, IPC!'
    }

    It 'decodes UTF-16 from a plain .NET NamedPipeServerStream; a read of only half a character writes nothing' {
        $name = New-TestPipeName
        $dotnet = [System.IO.Pipes.NamedPipeServerStream]::new($name, [System.IO.Pipes.PipeDirection]::InOut, 1,
            [System.IO.Pipes.PipeTransmissionMode]::Byte, [System.IO.Pipes.PipeOptions]::Asynchronous)
        try {
            $accepting = $dotnet.WaitForConnectionAsync()
            $client = New-IpcPipe -Name $name -Connect -Framing Raw -TimeoutSeconds 10
            $accepting.Wait(30000) | Should -BeTrue
            $bytes = [System.Text.Encoding]::Unicode.GetBytes('€uro')   # 8 bytes, 2 per character

            $dotnet.Write($bytes, 0, 1); $dotnet.Flush()                 # half of '€'
            Wait-Until { $client.BytesReceived -ge 1 } -TimeoutSeconds 30 | Should -BeTrue
            $none = Receive-IpcMessage $client -Encoding unicode -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable timedOut
            $none | Should -BeNullOrEmpty -Because 'one byte of a UTF-16 character is no text yet'
            $timedOut[0].FullyQualifiedErrorId | Should -Be 'ReceiveTimeout,PsIpc.Commands.ReceiveIpcMessageCommand'

            $dotnet.Write($bytes, 1, 7); $dotnet.Flush()
            $text = Receive-IpcMessage $client -Count 1 -Encoding unicode -TimeoutSeconds 30
            $text | Should -BeExactly '€uro' -Because 'the byte kept from the earlier Receive-IpcMessage completes the character'

            $dotnet.Write([byte[]](0xFF, 0xFE), 0, 2); $dotnet.Flush()
            , (Receive-IpcMessage $client -Count 1 -TimeoutSeconds 30) | Should -BeOfType ([byte[]]) -Because 'without -Encoding bytes stay bytes'
        }
        finally {
            $dotnet.Dispose()
        }
    }

    It 'takes a code page number, an encoding name or an Encoding object, and completes the names' {
        $srv = Start-IpcSocketServer -Port 0 -Framing Raw
        $peer = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $srv.Port)
        try {
            $stream = $peer.GetStream()
            foreach ($encoding in 28591, 'iso-8859-1', [System.Text.Encoding]::Latin1, 'latin1') {
                $stream.Write([byte[]](0x63, 0x61, 0x66, 0xE9), 0, 4)   # 'café' in Latin-1
                Receive-IpcMessage $srv -Count 1 -Encoding $encoding -TimeoutSeconds 30 | Should -BeExactly 'café' -Because "-Encoding $encoding"
            }
            $stream.Write([byte[]](0x63, 0xFF), 0, 2)                    # 0xFF is never UTF-8
            Receive-IpcMessage $srv -Count 1 -Encoding utf8 -TimeoutSeconds 30 | Should -BeExactly "c$([char]0xFFFD)"
        }
        finally {
            $peer.Dispose()
        }
        $line = 'Receive-IpcMessage -Encoding big'
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText |
            Should -Be @('bigendianunicode', 'bigendianutf32')
    }

    It 'refuses an encoding nobody knows: ParameterArgumentTransformationError' -ForEach @(
        @{ Encoding = 'klingon' }
        @{ Encoding = 99999 }
    ) {
        $srv = Start-IpcSocketServer -Port 0 -Framing Raw
        { Receive-IpcMessage $srv -Encoding $Encoding -TimeoutSeconds 0 } |
            Should -Throw -ErrorId 'ParameterArgumentTransformationError,PsIpc.Commands.ReceiveIpcMessageCommand'
    }

    It 'leaves text and objects as they are: -Encoding applies to bytes' {
        $server = New-IpcPipe
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
        Send-IpcMessage $client 'text stays text'
        Send-IpcMessage $client ([byte[]](0x68, 0x69))
        Send-IpcMessage $client @{ n = 1 } -Format Json
        $got = Receive-IpcMessage $server -Count 3 -Encoding ascii -TimeoutSeconds 30
        $got[0] | Should -BeExactly 'text stays text'
        $got[1] | Should -BeExactly 'hi'
        $got[2].n | Should -Be 1
    }
}
