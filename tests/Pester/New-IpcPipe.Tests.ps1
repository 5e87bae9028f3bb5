BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'New-IpcPipe' {
    AfterEach {
        Clear-TestState
    }

    Context 'Server' {
        It 'generates a unique name when -Name is omitted and exposes it as .Name' {
            $a = New-IpcPipe
            $b = New-IpcPipe

            $a | Should -BeOfType ([PsIpc.Transport.Channels.PipeServerChannel])
            $a.Name | Should -Match "^psipc-$PID-[0-9a-f]{12}$"
            $b.Name | Should -Not -Be $a.Name
            $a.Role | Should -Be 'Server'
            $a.Kind | Should -Be 'Pipe'
            $a.State | Should -Be 'Listening'
            $a.MaxClients | Should -Be 1
            $a.Address | Should -Be (Join-Path ([System.IO.Path]::GetTempPath()) "CoreFxPipe_$($a.Name)")
            Test-Path -LiteralPath $a.Address | Should -BeTrue
        }

        It 'creates a server with the given name, and a client with -Connect' {
            $name = New-TestPipeName
            $server = New-IpcPipe -Name $name -MaxClients 3
            $client = New-IpcPipe -Name $name -Connect -TimeoutSeconds 5

            $server.Name | Should -Be $name
            $server.MaxClients | Should -Be 3
            $client | Should -BeOfType ([PsIpc.Transport.Channels.PipeClientChannel])
            $client.Name | Should -Be $name
            $client.Role | Should -Be 'Client'
            $client.State | Should -Be 'Connected'
            $client.PeerProcessId | Should -Be $PID
            Wait-Until { $server.PeerCount -eq 1 } | Should -BeTrue
            $server.State | Should -Be 'Connected'
            $server.ClientsAccepted | Should -Be 1

            Send-IpcMessage -Channel $client -InputObject 'ping'
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'ping'
        }

        It 'creates its socket file with mode 0600' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            (& stat -c '%a' $server.Address) | Should -Be '600'
            (& stat -c '%F' $server.Address) | Should -Be 'socket'
        }

        It 'refuses a name that another process serves with PipeNameInUse' {
            $name = New-TestPipeName
            Register-TestPath (Get-PipePath $name)
            $child = Start-TestPwshChild {
                param($Name)
                $server = New-IpcPipe -Name $Name
                'ready'
                Start-Sleep -Seconds 120
            } -ArgumentList $name
            Read-PeerLine $child | Should -Be 'ready'

            { New-IpcPipe -Name $name } | Should -Throw -ErrorId 'PipeNameInUse,PsIpc.Commands.NewIpcPipeCommand'
            # The other process's server is untouched: its socket is still there and still answers.
            $client = New-IpcPipe -Name $name -Connect -TimeoutSeconds 10
            $client.PeerProcessId | Should -Be $child.Id
        }

        It 'refuses a name that this process already serves with PipeNameInUse' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $err = { New-IpcPipe -Name $server.Name } | Should -Throw -ErrorId 'PipeNameInUse,PsIpc.Commands.NewIpcPipeCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'ResourceExists'
            $err.TargetObject | Should -Be $server.Name
            $server.State | Should -Be 'Listening'
        }

        It 'replaces the stale socket file of a server that was killed with kill -9' {
            $name = New-TestPipeName
            $child = Start-TestPwshChild {
                param($Name)
                $server = New-IpcPipe -Name $Name
                'ready'
                Start-Sleep -Seconds 120
            } -ArgumentList $name
            Read-PeerLine $child | Should -Be 'ready'
            $path = Get-PipePath $name
            Stop-TestProcess $child
            Test-Path -LiteralPath $path | Should -BeTrue -Because 'SIGKILL gives the server no chance to delete its socket file'

            $server = New-IpcPipe -Name $name
            $server.Address | Should -Be $path
            $client = New-IpcPipe -Name $name -Connect -TimeoutSeconds 5
            $client.PeerProcessId | Should -Be $PID
            Send-IpcMessage -Channel $client -InputObject 'after the stale file'
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'after the stale file'
        }

        It 'refuses the PipeBusy client beyond -MaxClients and goes on serving the others' {
            $server = New-IpcPipe -Name (New-TestPipeName) -MaxClients 2
            $first = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            $second = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5

            $err = { New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5 } |
                Should -Throw -ErrorId 'PipeBusy,PsIpc.Commands.NewIpcPipeCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'ResourceBusy'

            Send-IpcMessage -Channel $first -InputObject 'one'
            Send-IpcMessage -Channel $second -InputObject 'two'
            $got = Receive-IpcMessage -Channel $server -Count 2 -TimeoutSeconds 5
            $got | Sort-Object | Should -Be @('one', 'two')
        }

        It 'does not replace a file at the pipe path that is not a socket (PipeNameInUse), and leaves it alone' {
            $name = New-TestPipeName
            $path = Get-PipePath $name
            Set-Content -LiteralPath $path -Value 'precious data' -NoNewline
            try {
                { New-IpcPipe -Name $name } | Should -Throw -ErrorId 'PipeNameInUse,PsIpc.Commands.NewIpcPipeCommand'
                (& stat -c '%F' $path) | Should -Be 'regular file'
                Get-Content -LiteralPath $path -Raw | Should -Be 'precious data'
            }
            finally {
                Remove-Item -LiteralPath $path -Force -ErrorAction SilentlyContinue
            }
        }

        It 'accepts clients when -MaxMessageSize is smaller than the handshake (<Max> bytes)' -ForEach @(
            @{ Max = 0 }
            @{ Max = 10 }
        ) {
            # -MaxMessageSize limits messages; the Hello is not a message.
            $server = New-IpcPipe -Name (New-TestPipeName) -MaxMessageSize $Max
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            $client.State | Should -Be 'Connected'
            Send-IpcMessage -Channel $client -InputObject ('z' * $Max)
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be ('z' * $Max)
            { Send-IpcMessage -Channel $client -InputObject ('z' * ($Max + 1)) } |
                Should -Throw -ErrorId 'MessageTooLarge,PsIpc.Commands.SendIpcMessageCommand'
        }

        It 'tells a client with a small -MaxMessageSize that it was refused with PipeBusy' {
            # The refusal is an Error frame whose text is longer than the client's message limit.
            $server = New-IpcPipe -Name (New-TestPipeName)
            $first = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            { New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5 -MaxMessageSize 20 } |
                Should -Throw -ErrorId 'PipeBusy,PsIpc.Commands.NewIpcPipeCommand'
        }

        It 'does not let a connection that never says hello keep real clients out' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            $silent = Start-PythonPeer @'
s = connect(sys.argv[1])
say('connected')
hang()
'@ -ArgumentList $server.Address
            Read-PeerLine $silent | Should -Be 'connected'
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 5
            'past the silent one' | Send-IpcMessage -Channel $client
            Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 5 | Should -Be 'past the silent one'
        }

        It 'accepts -WhatIf without creating anything' {
            $name = New-TestPipeName
            $result = New-IpcPipe -Name $name -WhatIf
            $result | Should -BeNullOrEmpty
            Get-IpcChannel -Name $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            Test-Path -LiteralPath (Get-PipePath $name) | Should -BeFalse
        }
    }

    Context 'Script block handler (-ScriptBlock)' {
        It 'answers each client with the script block''s output, and serves until it is closed' {
            $pipe = New-IpcPipe -Name (New-TestPipeName) -ScriptBlock { param($m) "ACK: $m"; [pscustomobject]@{ Echo = $m; Length = $m.Length } }
            $pipe | Should -BeOfType ([PsIpc.Transport.Channels.PipeServerChannel])
            $pipe.MaxClients | Should -Be ([int]::MaxValue)
            $pipe.Handler.ThrottleLimit | Should -Be 8
            $pipe.Handler.Depth | Should -Be 2
            $pipe.HandlerErrors | Should -Be 0

            foreach ($i in 1..3) {
                $client = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 5
                Send-IpcMessage -Channel $client -InputObject "hello $i"
                $text, $object = Receive-IpcMessage -Channel $client -Count 2 -TimeoutSeconds 5
                $text | Should -Be "ACK: hello $i"
                $object.Echo | Should -Be "hello $i"   # CliXml: a pipe's peer is of this user
                $object.Length | Should -Be 7
                Close-IpcChannel -Channel $client
            }
            $pipe.ClientsAccepted | Should -Be 3
            Wait-Until { $pipe.Handler.MessagesHandled -eq 3 } | Should -BeTrue
            $pipe.State | Should -Not -Be 'Closed'
        }

        It 'takes -MaxClients, -ThrottleLimit and -Depth' {
            $pipe = New-IpcPipe -Name (New-TestPipeName) -MaxClients 2 -ThrottleLimit 3 -Depth 5 -ScriptBlock { param($m) $m }
            $pipe.MaxClients | Should -Be 2
            $pipe.Handler.ThrottleLimit | Should -Be 3
            $pipe.Handler.Depth | Should -Be 5
            $pipe.Handler.ToString() | Should -Be '{ param($m) $m } (ThrottleLimit 3)'
        }

        It 'answers a client in another process' {
            $pipe = New-IpcPipe -ScriptBlock { param($m) if ($m -is [string]) { $m.ToUpper() } else { $m.n * 2 } }
            $result = Invoke-PwshChild {
                param($Name)
                $client = New-IpcPipe -Name $Name -Connect -TimeoutSeconds 10
                Send-IpcMessage -Channel $client -InputObject 'from the child'
                Send-IpcMessage -Channel $client -InputObject ([pscustomobject]@{ n = 21 })
                Receive-IpcMessage -Channel $client -Count 2 -TimeoutSeconds 10
                Close-IpcChannel -Channel $client
            } -ArgumentList $pipe.Name
            $result.ExitCode | Should -Be 0 -Because $result.Error
            $result.Output | Should -Be 'FROM THE CHILD', '42'
            $pipe.HandlerErrors | Should -Be 0
        }

        It 'counts a script block that throws or writes an error, tells the client (HandlerFailed), and goes on serving' {
            $pipe = New-IpcPipe -ScriptBlock {
                param($m)
                if ($m -eq 'bad') { throw "cannot handle $m" }
                if ($m -eq 'warn') { 'before'; Write-Error "no good: $m"; 'after'; return }
                "ok $m"
            }
            $client = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 5
            'bad', 'good', 'warn', 'last' | Send-IpcMessage -Channel $client
            Receive-IpcMessage -Channel $client -Count 4 -TimeoutSeconds 5 -ErrorAction SilentlyContinue -ErrorVariable failed |
                Should -Be 'ok good', 'before', 'after', 'ok last'
            $failed.FullyQualifiedErrorId | Should -Be 'HandlerFailed,PsIpc.Commands.ReceiveIpcMessageCommand', 'HandlerFailed,PsIpc.Commands.ReceiveIpcMessageCommand'
            $failed.Exception.Message | Should -Be 'cannot handle bad', 'no good: warn'
            Wait-Until { $pipe.HandlerErrors -eq 2 } | Should -BeTrue
            $pipe.RecentHandlerErrors.Message | Should -Be 'cannot handle bad', 'no good: warn'
            Wait-Until { $pipe.Handler.MessagesHandled -eq 4 } | Should -BeTrue
            $pipe.State | Should -Be 'Connected'
        }

        It 'answers each client in the order of its requests, and the clients in parallel' {
            # A gate the script block of the first client's first message waits on, in the handler's runspace.
            $key = 'PsIpcTestGate-' + [guid]::NewGuid().ToString('N')
            $gate = [System.Threading.ManualResetEventSlim]::new($false)
            [System.AppDomain]::CurrentDomain.SetData($key, $gate)
            try {
                $pipe = New-IpcPipe -ThrottleLimit 4 -ScriptBlock ([scriptblock]::Create(@"
param(`$m)
if (`$m -eq 'a1') { `$null = [System.AppDomain]::CurrentDomain.GetData('$key').Wait(30000) }
Start-Sleep -Milliseconds (Get-Random -Maximum 10)
"`$m-x"
"`$m-y"
"@))
                $a = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 5
                $b = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 5
                1..5 | ForEach-Object { "a$_" } | Send-IpcMessage -Channel $a
                1..5 | ForEach-Object { "b$_" } | Send-IpcMessage -Channel $b
                # b is answered while a's first message waits: a slow client does not hold up the others.
                Receive-IpcMessage -Channel $b -Count 10 -TimeoutSeconds 10 | Should -Be (1..5 | ForEach-Object { "b$_-x"; "b$_-y" })
                Wait-Until { $pipe.Handler.Busy -eq 1 } | Should -BeTrue
                Receive-IpcMessage -Channel $a -TimeoutSeconds 0 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
                $gate.Set()
                Receive-IpcMessage -Channel $a -Count 10 -TimeoutSeconds 10 | Should -Be (1..5 | ForEach-Object { "a$_-x"; "a$_-y" })
            }
            finally {
                $gate.Set()
                [System.AppDomain]::CurrentDomain.SetData($key, $null)
            }
        }

        It 'serializes reply objects to -Depth (<Label>)' -ForEach @(
            @{ Label = 'default 2: cut'; Depth = $null; Whole = $false }
            @{ Label = '-Depth 4: whole'; Depth = 4; Whole = $true }
        ) {
            $parameters = @{ ScriptBlock = { param($path) [System.IO.DirectoryInfo]::new($path) } }
            if ($Depth) { $parameters.Depth = $Depth }
            $pipe = New-IpcPipe @parameters
            $client = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 5
            Send-IpcMessage -Channel $client -InputObject '/tmp/a/b/c/d'
            $reply = Receive-IpcMessage -Channel $client -Count 1 -TimeoutSeconds 5
            $reply.pstypenames[0] | Should -Be 'Deserialized.System.IO.DirectoryInfo'
            $reply.Parent.Parent.pstypenames[0] | Should -Be $(if ($Whole) { 'Deserialized.System.IO.DirectoryInfo' } else { 'System.String' })
            if ($Whole) { $reply.Parent.Parent.Parent.Name | Should -Be 'a' }
            else { $reply.Parent.Parent | Should -Be '/tmp/a/b' }   # cut at the default depth 2: its text
        }

        It 'lets a running script block finish and deliver its reply when closed, then releases its runspaces' {
            $before = @(Get-Runspace).Count
            $pipe = New-IpcPipe -ThrottleLimit 2 -ScriptBlock { param($m) if ($m -eq 'slow') { Start-Sleep -Milliseconds 500 }; "done $m" }
            $client = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 5
            $other = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 5
            Send-IpcMessage -Channel $other -InputObject 'quick'
            Receive-IpcMessage -Channel $other -Count 1 -TimeoutSeconds 5 | Should -Be 'done quick'
            Send-IpcMessage -Channel $client -InputObject 'slow'
            Wait-Until { $pipe.Handler.Busy -eq 1 } | Should -BeTrue
            Close-IpcChannel -Channel $pipe -TimeoutSeconds 10
            Receive-IpcMessage -Channel $client -Count 1 -TimeoutSeconds 5 | Should -Be 'done slow'
            $pipe.State | Should -Be 'Closed'
            Wait-Until { @(Get-Runspace).Count -eq $before } | Should -BeTrue -Because "$(@(Get-Runspace).Count) runspaces, $before before"
        }

        It 'stops a script block still running at the close deadline, also when Close-IpcChannel is stopped (Ctrl+C)' {
            $before = @(Get-Runspace).Count
            $pipe = New-IpcPipe -ScriptBlock { param($m) Start-Sleep -Seconds 600; 'never' }
            $client = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 5
            Send-IpcMessage -Channel $client -InputObject 'stuck'
            Wait-Until { $pipe.Handler.Busy -eq 1 } | Should -BeTrue
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath, $Channel)
                        Import-Module $ModulePath
                        Close-IpcChannel -Channel $Channel -TimeoutSeconds 2
                    }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($pipe)
                $null = $ps.BeginInvoke()
                Wait-Until { $pipe.IsClosed } -TimeoutSeconds 30 | Should -BeTrue
                $ps.Stop()   # Ctrl+C: Close-IpcChannel returns, the close goes on to its deadline
                $ps.InvocationStateInfo.State | Should -BeIn 'Stopped', 'Completed'
            }
            finally { $ps.Dispose() }
            Wait-Until { $pipe.State -eq 'Closed' -and @(Get-Runspace).Count -eq $before } -TimeoutSeconds 30 |
                Should -BeTrue -Because "$(@(Get-Runspace).Count) runspaces, $before before"
            Receive-IpcMessage -Channel $client -TimeoutSeconds 5 | Should -BeNullOrEmpty   # the end of the stream, no reply
            $pipe.HandlerErrors | Should -Be 0 -Because 'a script block stopped by the close did not fail'
        }

        It 'stops with the runspace that created the pipe' {
            $before = @(Get-Runspace).Count
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath)
                        Import-Module $ModulePath
                        New-IpcPipe -ScriptBlock { param($m) "from the runspace: $m" }
                    }).AddArgument($env:PSIPC_MODULE_PATH)
                $pipe = $ps.Invoke()[0]
                $client = New-IpcPipe -Name $pipe.Name -Connect -TimeoutSeconds 5
                Send-IpcMessage -Channel $client -InputObject 'hi'
                Receive-IpcMessage -Channel $client -Count 1 -TimeoutSeconds 5 | Should -Be 'from the runspace: hi'
            }
            finally { $ps.Dispose() }
            Wait-Until { $pipe.State -eq 'Closed' } | Should -BeTrue
            Receive-IpcMessage -Channel $client -TimeoutSeconds 5 | Should -BeNullOrEmpty
            Close-IpcChannel -Channel $client
            Wait-Until { @(Get-Runspace).Count -eq $before } | Should -BeTrue -Because "$(@(Get-Runspace).Count) runspaces, $before before"
        }

        It 'is not offered with -Connect' {
            { New-IpcPipe -Name (New-TestPipeName) -Connect -ScriptBlock { 'x' } } | Should -Throw -ErrorId 'AmbiguousParameterSet,PsIpc.Commands.NewIpcPipeCommand'
        }
    }

    Context 'Pipes of programs that know nothing of PsIpc (-Framing Line and Raw)' {
        It 'a Line client talks to a plain .NET NamedPipeServerStream' {
            $name = New-TestPipeName
            $dotnet = [System.IO.Pipes.NamedPipeServerStream]::new($name, [System.IO.Pipes.PipeDirection]::InOut, 1,
                [System.IO.Pipes.PipeTransmissionMode]::Byte, [System.IO.Pipes.PipeOptions]::Asynchronous)
            try {
                $accepting = $dotnet.WaitForConnectionAsync()
                $client = New-IpcPipe -Name $name -Connect -Framing Line -TimeoutSeconds 10
                $accepting.Wait(30000) | Should -BeTrue
                $reader = [System.IO.StreamReader]::new($dotnet)
                $writer = [System.IO.StreamWriter]::new($dotnet)
                $writer.AutoFlush = $true

                Send-IpcMessage $client 'hello from PsIpc'
                $reader.ReadLineAsync().Wait(30000) | Out-Null
                $writer.Write("ACK one`nACK two`n")

                $client.Framing | Should -Be 'Line'
                Receive-IpcMessage $client -Count 2 -TimeoutSeconds 30 | Should -Be @('ACK one', 'ACK two')
            }
            finally {
                Clear-TestState
                $dotnet.Dispose()
            }
        }

        It 'a Line server answers a plain .NET NamedPipeClientStream, reply by envelope' {
            $server = New-IpcPipe -Name (New-TestPipeName) -Framing Line
            $dotnet = [System.IO.Pipes.NamedPipeClientStream]::new('.', $server.Name, [System.IO.Pipes.PipeDirection]::InOut)
            try {
                $dotnet.Connect(30000)
                $writer = [System.IO.StreamWriter]::new($dotnet)
                $writer.AutoFlush = $true
                $reader = [System.IO.StreamReader]::new($dotnet)
                $writer.Write("ping`r`n")

                $envelope = Receive-IpcMessage $server -Count 1 -TimeoutSeconds 30 -Envelope
                $envelope.Body | Should -BeExactly 'ping'
                $envelope.Sender.Framing | Should -Be 'Line'
                Send-IpcMessage $envelope.Sender 'pong'

                $line = $reader.ReadLineAsync()
                $line.Wait(30000) | Should -BeTrue
                $line.Result | Should -BeExactly 'pong'
            }
            finally {
                $dotnet.Dispose()
                Clear-TestState
            }
        }

        It 'a Raw server hands bytes as they come and writes bytes as they are' {
            $server = New-IpcPipe -Name (New-TestPipeName) -Framing Raw
            $dotnet = [System.IO.Pipes.NamedPipeClientStream]::new('.', $server.Name, [System.IO.Pipes.PipeDirection]::InOut)
            try {
                $dotnet.Connect(30000)
                $dotnet.Write([byte[]](1, 2, 3), 0, 3)
                $dotnet.Flush()

                $envelope = Receive-IpcMessage $server -Count 1 -TimeoutSeconds 30 -Envelope
                , $envelope.Body | Should -BeOfType ([byte[]])
                $envelope.Body | Should -Be @(1, 2, 3)
                Send-IpcMessage $envelope.Sender ([byte[]](9, 8))

                $buffer = [byte[]]::new(16)
                $read = $dotnet.ReadAsync($buffer, 0, 16)
                $read.Wait(30000) | Should -BeTrue
                $buffer[0..($read.Result - 1)] | Should -Be @(9, 8)
            }
            finally {
                $dotnet.Dispose()
                Clear-TestState
            }
        }

        It 'a Line server with -ScriptBlock answers a plain client that sends its request and half-closes' {
            $server = New-IpcPipe -Name (New-TestPipeName) -Framing Line -ScriptBlock { param($line) "ACK: $line" }
            $socket = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::Unix, [System.Net.Sockets.SocketType]::Stream,
                [System.Net.Sockets.ProtocolType]::Unspecified)
            try {
                $socket.Connect([System.Net.Sockets.UnixDomainSocketEndPoint]::new($server.Address))
                $socket.ReceiveTimeout = 30000
                $stream = [System.Net.Sockets.NetworkStream]::new($socket)
                $null = $socket.Send([System.Text.Encoding]::UTF8.GetBytes("Hello, IPC!`n"))
                $socket.Shutdown([System.Net.Sockets.SocketShutdown]::Send)
                [System.IO.StreamReader]::new($stream).ReadToEnd() | Should -BeExactly "ACK: Hello, IPC!`n"
            }
            finally {
                $socket.Dispose()
                Clear-TestState
            }
        } -Skip:$IsWindows

        It 'refuses a PsIpc client of a Line server with no handshake it can complete: the client times out, the server lives on' {
            $server = New-IpcPipe -Name (New-TestPipeName) -Framing Line
            try {
                { New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 1 -ErrorAction Stop } |
                    Should -Throw -ErrorId 'ConnectTimeout,PsIpc.Commands.NewIpcPipeCommand'
                $server.State | Should -Not -Be 'Closed'
            }
            finally {
                Clear-TestState
            }
        }
    }

    Context 'Names' {
        It 'rejects the invalid name <Name> with InvalidPipeName' -ForEach @(
            @{ Name = 'a/b' }
            @{ Name = '../escape' }
            @{ Name = '.hidden' }
            @{ Name = 'has space' }
            @{ Name = 'semi;colon' }
        ) {
            $err = { New-IpcPipe -Name $Name } | Should -Throw -ErrorId 'InvalidPipeName,PsIpc.Commands.NewIpcPipeCommand' -PassThru
            $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
            { New-IpcPipe -Name $Name -Connect -TimeoutSeconds 1 } | Should -Throw -ErrorId 'InvalidPipeName,PsIpc.Commands.NewIpcPipeCommand'
        }

        It 'rejects an empty or null name in parameter validation' {
            { New-IpcPipe -Name '' } | Should -Throw -ErrorId 'ParameterArgumentValidationError,PsIpc.Commands.NewIpcPipeCommand'
            { New-IpcPipe -Name $null } | Should -Throw -ErrorId 'ParameterArgumentValidationError,PsIpc.Commands.NewIpcPipeCommand'
            { New-IpcPipe -Name '' -Connect } | Should -Throw -ErrorId 'ParameterArgumentValidationError,PsIpc.Commands.NewIpcPipeCommand'
        }

        It 'rejects a name whose socket path is too long with PipeNameTooLong' {
            # 95 characters pass the 100-character name limit but not Linux's 107-byte socket path limit.
            $name = 'p' * 95
            $err = { New-IpcPipe -Name $name } | Should -Throw -ErrorId 'PipeNameTooLong,PsIpc.Commands.NewIpcPipeCommand' -PassThru
            $err.Exception.Message | Should -BeLike '*socket path limit*'
            { New-IpcPipe -Name $name -Connect -TimeoutSeconds 1 } | Should -Throw -ErrorId 'PipeNameTooLong,PsIpc.Commands.NewIpcPipeCommand'
        }

        It 'rejects a name longer than 100 characters with PipeNameTooLong' {
            { New-IpcPipe -Name ('q' * 101) } | Should -Throw -ErrorId 'PipeNameTooLong,PsIpc.Commands.NewIpcPipeCommand'
        }

        It 'accepts the longest name that fits the socket path' {
            $prefix = Join-Path ([System.IO.Path]::GetTempPath()) 'CoreFxPipe_'
            $name = 'r' * [Math]::Min(100, 107 - [System.Text.Encoding]::UTF8.GetByteCount($prefix))
            $server = New-IpcPipe -Name $name
            $server.Name | Should -Be $name
            Test-Path -LiteralPath $server.Address | Should -BeTrue
        }
    }

    Context 'Client (-Connect)' {
        It 'waits for a server that appears later' {
            $name = New-TestPipeName
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath, $Name)
                        Import-Module $ModulePath
                        New-IpcPipe -Name $Name -Connect -TimeoutSeconds 120
                    }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($name)
                $waiting = [PsIpc.Transport.Channels.IpcChannel]::ConnectWaiters
                $handle = $ps.BeginInvoke()
                # The server appears only once the client waits for it.
                Wait-Until { [PsIpc.Transport.Channels.IpcChannel]::ConnectWaiters -gt $waiting -or $handle.IsCompleted } -TimeoutSeconds 60 | Should -BeTrue
                $handle.IsCompleted | Should -BeFalse -Because 'the client waits: there is no server yet'
                $server = New-IpcPipe -Name $name
                $client = $ps.EndInvoke($handle)[0]

                $client.State | Should -Be 'Connected'
                $server.Name | Should -Be $name
                Send-IpcMessage -Channel $server -InputObject 'late but here'
                Receive-IpcMessage -Channel $client -Count 1 -TimeoutSeconds 5 | Should -Be 'late but here'
            }
            finally {
                $ps.Dispose()
            }
        }

        It 'fails with ConnectTimeout when no server appears' {
            $name = New-TestPipeName
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            $err = { New-IpcPipe -Name $name -Connect -TimeoutSeconds 0.5 -ErrorAction Stop } |
                Should -Throw -ErrorId 'ConnectTimeout,PsIpc.Commands.NewIpcPipeCommand' -PassThru
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 120 -Because 'a safety net: it ends at its timeout, not never'
            $err.CategoryInfo.Category | Should -Be 'OperationTimeout'
            $err.TargetObject | Should -Be $name
        }

        It 'reports ConnectTimeout as a non-terminating error: silent under SilentlyContinue, returns nothing' {
            $name = New-TestPipeName
            $result = New-IpcPipe -Name $name -Connect -TimeoutSeconds 0.3 -ErrorAction SilentlyContinue -ErrorVariable errors
            $after = 'the script went on'

            $result | Should -BeNullOrEmpty
            $after | Should -Be 'the script went on'
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -Be 'ConnectTimeout,PsIpc.Commands.NewIpcPipeCommand'
            Get-IpcChannel -Name $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'with -TimeoutSeconds 0 polls once: ConnectTimeout at once when there is no server' {
            $name = New-TestPipeName
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            { New-IpcPipe -Name $name -Connect -TimeoutSeconds 0 -ErrorAction Stop } |
                Should -Throw -ErrorId 'ConnectTimeout,PsIpc.Commands.NewIpcPipeCommand'
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 120 -Because 'a safety net: 0 tries once, it does not wait for a server'
        }

        It 'with -TimeoutSeconds 0 connects to a server that is there' {
            # Many tries: a poll must not depend on how fast the server's thread answers the handshake.
            $server = New-IpcPipe -Name (New-TestPipeName) -MaxClients 20
            $errors = [System.Collections.ArrayList]::new()
            $clients = foreach ($i in 1..20) {
                New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable +errors
            }
            $errors.FullyQualifiedErrorId | Should -BeNullOrEmpty
            @($clients).Count | Should -Be 20
            $clients | ForEach-Object { $_.State | Should -Be 'Connected' }
        }

        It 'fails with ProtocolError when the server does not speak PsIpc (an HTTP server)' {
            $name = New-TestPipeName
            $path = Get-PipePath $name
            $peer = Start-PythonPeer @'
path = sys.argv[1]
srv, conn = accept_one(path)
conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello')
hang()
'@ -ArgumentList $path
            try {
                Read-PeerLine $peer | Should -Be 'ready'
                # The peer keeps the connection open and says nothing more: ProtocolError rather than ConnectTimeout
                # shows that the garbage itself ended the connect, not the timeout.
                $err = { New-IpcPipe -Name $name -Connect -TimeoutSeconds 60 } |
                    Should -Throw -ErrorId 'ProtocolError,PsIpc.Commands.NewIpcPipeCommand' -PassThru
                $err.CategoryInfo.Category | Should -Be 'ProtocolError'
                Get-IpcChannel -Name $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            }
            finally {
                Stop-TestProcess $peer
                Remove-Item -LiteralPath $path -ErrorAction SilentlyContinue
            }
        }

        It 'fails with ProtocolVersionMismatch when the server speaks another protocol version' {
            $name = New-TestPipeName
            $path = Get-PipePath $name
            $peer = Start-PythonPeer @'
path = sys.argv[1]
srv, conn = accept_one(path)
read_frame(conn)
conn.sendall(frame(HELLO, b'PSIPC' + bytes([2, 0, 0]) + struct.pack('<II', os.getpid(), 1 << 20)))
reply = read_frame(conn)
say('error code %d' % reply[1][0] if reply and reply[0] == ERROR else 'reply: %r' % (reply,))
os.unlink(path)
'@ -ArgumentList $path
            try {
                Read-PeerLine $peer | Should -Be 'ready'
                $err = { New-IpcPipe -Name $name -Connect -TimeoutSeconds 10 } |
                    Should -Throw -ErrorId 'ProtocolVersionMismatch,PsIpc.Commands.NewIpcPipeCommand' -PassThru
                $err.Exception.Message | Should -BeLike '*version 2*'
                Read-PeerLine $peer | Should -Be 'error code 4' -Because 'the client says why it hangs up (4: version mismatch)'
            }
            finally {
                Remove-Item -LiteralPath $path -ErrorAction SilentlyContinue
            }
        }

        It 'stops waiting for a server on PowerShell.Stop() (Ctrl+C)' {
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript({
                        param($ModulePath, $Name)
                        Import-Module $ModulePath
                        New-IpcPipe -Name $Name -Connect
                    }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument((New-TestPipeName))
                $stop = Stop-WhenWaiting -PowerShell $ps   # once the connect waits for the server
                $stop.State | Should -Be 'Stopped'
                $stop.Waiters | Should -Be 0 -Because 'the connect no longer waits'
            }
            finally {
                $ps.Dispose()
            }
        }

        It 'fails with ConnectTimeout on a socket file nobody listens on' {
            $name = New-TestPipeName
            $path = Get-PipePath $name
            # A bound, never-listening socket: the file exists, a connect is refused.
            $peer = Start-PythonPeer @'
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.close()
say('ready')
'@ -ArgumentList $path
            try {
                Read-PeerLine $peer | Should -Be 'ready'
                $err = { New-IpcPipe -Name $name -Connect -TimeoutSeconds 0.5 -ErrorAction Stop } |
                    Should -Throw -ErrorId 'ConnectTimeout,PsIpc.Commands.NewIpcPipeCommand' -PassThru
                $err.Exception.Message | Should -BeLike '*nobody listens*'
            }
            finally {
                Remove-Item -LiteralPath $path -ErrorAction SilentlyContinue
            }
        }
    }

    Context 'Tab completion' {
        It 'completes -Name of -Connect with the pipes served here and by other processes, and a server''s -Name with none (they are taken)' {
            $prefix = 'psipctab' + [guid]::NewGuid().ToString('N').Substring(0, 6)
            $local = New-IpcPipe -Name "$prefix-local"
            Register-TestPath (Get-PipePath "$prefix-remote")
            $child = Start-TestPwshChild {
                param($Name)
                $server = New-IpcPipe -Name $Name
                'ready'
                Start-Sleep -Seconds 120
            } -ArgumentList "$prefix-remote"
            Read-PeerLine $child | Should -Be 'ready'

            foreach ($line in "New-IpcPipe -Connect -Name $prefix", "New-IpcPipe -Connect $prefix") {
                $result = TabExpansion2 -inputScript $line -cursorColumn $line.Length
                $result.CompletionMatches.CompletionText | Should -Be @("$prefix-local", "$prefix-remote") -Because $line
                $result.CompletionMatches[0].ResultType | Should -Be 'ParameterValue'
            }
            foreach ($line in "New-IpcPipe -Name $prefix", "New-IpcPipe $prefix") {
                $result = TabExpansion2 -inputScript $line -cursorColumn $line.Length
                $result.CompletionMatches | Should -BeNullOrEmpty -Because "$line creates a server, and a served name fails with PipeNameInUse"
            }
        }

        It 'completes nothing for a prefix no pipe has' {
            $line = 'New-IpcPipe -Name zzznothing' + [guid]::NewGuid().ToString('N')
            $result = TabExpansion2 -inputScript $line -cursorColumn $line.Length
            $result.CompletionMatches | Should -BeNullOrEmpty
        }
    }
}
