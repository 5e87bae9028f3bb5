<#
    Conventions a PowerShell user expects (issue 11, item 7): -Force where New- meets an existing name,
    -WhatIf/-Confirm on Close-IpcChannel, progress on waits longer than a second (connect included),
    completers that offer only what the parameter accepts and never a name that then fails as ambiguous,
    -Verbose on connect, accept, close and drops. Each with the exact error ids.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    function Get-Completion {
        param([string] $Line)
        @((TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText)
    }

    function Invoke-InRunspace {
        # Runs a script in a new runspace of this process with PsIpc imported; returns the streams (progress included).
        param([string] $Script, [hashtable] $Variables = @{})
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$($env:PSIPC_MODULE_PATH)'; `$ProgressPreference = 'Continue'`n" + $Script)
            foreach ($key in $Variables.Keys) { $ps.Runspace.SessionStateProxy.SetVariable($key, $Variables[$key]) }
            $output = $ps.Invoke()
            [pscustomobject]@{
                Output   = @($output)
                Errors   = @($ps.Streams.Error)
                Progress = @($ps.Streams.Progress)
                Verbose  = @($ps.Streams.Verbose | ForEach-Object Message)
            }
        }
        finally { $ps.Dispose() }
    }
}

AfterAll {
    Clear-TestState
}

Describe 'New-SharedMemory -Force' {
    AfterEach {
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
        Clear-TestState
    }

    It 'replaces a segment of that name; without -Force the name in use is SharedMemoryNameInUse' {
        $name = New-TestShmName
        $old = New-SharedMemory -Name $name -Size 4KB
        Write-SharedMemory $old -InputObject 'stale'
        { New-SharedMemory -Name $name -Size 8KB } | Should -Throw -ErrorId 'SharedMemoryNameInUse,PsIpc.Commands.NewSharedMemoryCommand'

        $new = New-SharedMemory -Name $name -Size 8KB -Force
        $new.Capacity | Should -Be 8KB
        Read-SharedMemory $new | Should -BeNullOrEmpty -Because 'the new segment is empty'
        $reopened = New-SharedMemory -Name $name -Open
        $reopened.Capacity | Should -Be 8KB
        Read-SharedMemory $old | Should -Be 'stale' -Because 'a process that had the old one open keeps it until it closes it'
    }

    It 'creates as usual when the name is free, and replaces a queue with a segment' {
        $name = New-TestShmName
        (New-SharedMemory -Name $name -Size 4KB -Force).Capacity | Should -Be 4KB
        $queue = New-SharedMemory -Name (New-TestShmName) -Size 4KB -Queue
        $segment = New-SharedMemory -Name $queue.Name -Size 4KB -Force
        $segment | Should -BeOfType ([PsIpc.Transport.SharedMemory.SharedMemorySegment])
    }

    It 'deletes nothing with -WhatIf' {
        $name = New-TestShmName
        $old = New-SharedMemory -Name $name -Size 4KB
        New-SharedMemory -Name $name -Size 8KB -Force -WhatIf | Should -BeNullOrEmpty
        (Get-SharedMemory -Name $name).Capacity | Should -Be 4KB
    }

    It 'is not a parameter of -Open: AmbiguousParameterSet' {
        $name = New-TestShmName
        $null = New-SharedMemory -Name $name -Size 4KB
        { New-SharedMemory -Name $name -Open -Force } | Should -Throw -ErrorId 'AmbiguousParameterSet,PsIpc.Commands.NewSharedMemoryCommand'
    }
}

Describe 'Close-IpcChannel -WhatIf and -Confirm' {
    AfterEach {
        Clear-TestState
    }

    It 'closes nothing with -WhatIf, and closes with -Confirm:$false' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        Close-IpcChannel $server -WhatIf
        $server.IsClosed | Should -BeFalse
        Get-IpcChannel | Should -Contain $server
        Close-IpcChannel $server -Confirm:$false
        $server.IsClosed | Should -BeTrue
    }

    It 'supports ShouldProcess with a low impact, as Stop-IpcSocketServer does' {
        foreach ($name in 'Close-IpcChannel', 'Stop-IpcSocketServer', 'Remove-SharedMemory', 'New-SharedMemory') {
            $command = Get-Command $name
            $command.Parameters.Keys | Should -Contain 'WhatIf' -Because $name
            $command.Parameters.Keys | Should -Contain 'Confirm' -Because $name
        }
    }

    It 'refuses a name that several channels share: ParameterArgumentTransformationError naming their roles' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
        $err = { Close-IpcChannel -Channel $server.Name } |
            Should -Throw -ErrorId 'ParameterArgumentTransformationError,PsIpc.Commands.CloseIpcChannelCommand' -PassThru
        $err.Exception.Message | Should -Match 'Server, Client|Client, Server'
        $server.IsClosed | Should -BeFalse
    }
}

Describe 'Progress on waits longer than a second' {
    AfterEach {
        Clear-TestState
    }

    It 'New-IpcPipe -Connect shows progress while it waits for the server, then ConnectTimeout' {
        $r = Invoke-InRunspace "New-IpcPipe -Name '$(New-TestPipeName)' -Connect -TimeoutSeconds 2.5"
        $r.Errors.FullyQualifiedErrorId | Should -Be 'ConnectTimeout,PsIpc.Commands.NewIpcPipeCommand'
        @($r.Progress | Where-Object { $_.Activity -like "Connecting to pipe '*'" -and $_.RecordType -eq 'Processing' }).Count | Should -BeGreaterThan 0
        $r.Progress[-1].RecordType | Should -Be 'Completed'
    }

    It 'Connect-IpcSocket shows progress while the server does not answer the handshake, then ConnectTimeout' {
        # A listener that never accepts: the kernel completes the TCP connect, nobody sends the PsIpc hello.
        $silent = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $silent.Start()
        try {
            $port = $silent.LocalEndpoint.Port
            $r = Invoke-InRunspace "Connect-IpcSocket -Port $port -TimeoutSeconds 2.5"
            $r.Errors.FullyQualifiedErrorId | Should -Be 'ConnectTimeout,PsIpc.Commands.ConnectIpcSocketCommand'
            @($r.Progress | Where-Object { $_.Activity -eq "Connecting to tcp:localhost:$port" -and $_.RecordType -eq 'Processing' }).Count | Should -BeGreaterThan 0
            $r.Progress[-1].RecordType | Should -Be 'Completed'
        }
        finally { $silent.Stop() }
    }

    It 'Connect-IpcQueue shows progress while it retries a broker that is not there, then BrokerUnreachable' {
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $probe.Start(); $port = $probe.LocalEndpoint.Port; $probe.Stop()   # nothing listens there
        $r = Invoke-InRunspace "Connect-IpcQueue -Uri 'amqp://127.0.0.1:$port/' -Queue q -TimeoutSeconds 2.5 -Verbose"
        $r.Errors.FullyQualifiedErrorId | Should -Be 'BrokerUnreachable,PsIpc.Queue.ConnectIpcQueueCommand'
        $r.Verbose | Should -Contain "Connecting to the broker for 'q' (up to 2.5 s)."
        @($r.Progress | Where-Object { $_.Activity -eq "Connecting to the broker for 'q'" -and $_.RecordType -eq 'Processing' }).Count | Should -BeGreaterThan 0
        $r.Progress[-1].RecordType | Should -Be 'Completed'
    }

    It 'Send-IpcMessage to a server without a client shows progress, then SendTimeout' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $r = Invoke-InRunspace 'Send-IpcMessage -Channel $server -InputObject x -TimeoutSeconds 2.5' -Variables @{ server = $server }
        $r.Errors.FullyQualifiedErrorId | Should -Be 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand'
        @($r.Progress | Where-Object { $_.Activity -like 'Waiting for a client of*' -and $_.RecordType -eq 'Processing' }).Count | Should -BeGreaterThan 0
    }

    It 'Send-IpcMessage waiting for room in a full shared memory queue shows progress, then SendTimeout' {
        $queue = New-SharedMemory -Name (New-TestShmName) -Size 4KB -Queue
        $filled = $false
        foreach ($i in 1..1000) {
            Send-IpcMessage $queue ('x' * 100) -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable full
            if ($full) { $filled = $true; break }
        }
        $filled | Should -BeTrue -Because 'a 4 KB queue is full long before 1000 messages of 100 bytes'
        $r = Invoke-InRunspace 'Send-IpcMessage -Channel $queue -InputObject (''x'' * 100) -TimeoutSeconds 2.5' -Variables @{ queue = $queue }
        $r.Errors.FullyQualifiedErrorId | Should -Be 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand'
        @($r.Progress | Where-Object { $_.Activity -eq "Sending to '$($queue.Name)' (waiting for room: the receiver is not taking messages)" -and $_.RecordType -eq 'Processing' }).Count |
            Should -BeGreaterThan 0
        $r.Progress[-1].RecordType | Should -Be 'Completed'
    }

    It 'Send-IpcMessage to a pipe server that does not read shows progress while it waits for room, then SendTimeout' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
        # The server takes up to 8 MiB it is not asked for, the sockets a few more, the client's queue 4 MiB: then a send waits.
        $r = Invoke-InRunspace @'
$big = [byte[]]::new(1MB)
try { 1..64 | ForEach-Object { , $big } | Send-IpcMessage -Channel $client -TimeoutSeconds 2.5 -ErrorAction Stop }
catch { $_.FullyQualifiedErrorId }
'@ -Variables @{ client = $client }
        $r.Output | Should -Be 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand'
        @($r.Progress | Where-Object { $_.Activity -eq "Sending to '$($client.Name)' (waiting for room: the receiver is not taking messages)" -and $_.RecordType -eq 'Processing' }).Count |
            Should -BeGreaterThan 0
        $server.MessagesReceived | Should -BeLessThan 64 -Because 'the server never received, so the sender had to wait'
    }

    It 'Write-, Update- and Read-SharedMemory show progress while another thread holds the lock, then SharedMemoryLockTimeout' {
        $segment = New-SharedMemory -Name (New-TestShmName) -Size 4KB
        $held = [System.Threading.ManualResetEventSlim]::new($false)
        $release = [System.Threading.ManualResetEventSlim]::new($false)
        $holder = [powershell]::Create()
        $null = $holder.AddScript("Import-Module '$($env:PSIPC_MODULE_PATH)'" + @'

Update-SharedMemory -SharedMemory $segment { $held.Set(); $null = $release.Wait(120000); 'from the holder' }
'@)
        foreach ($pair in @{ segment = $segment; held = $held; release = $release }.GetEnumerator()) {
            $holder.Runspace.SessionStateProxy.SetVariable($pair.Key, $pair.Value)
        }
        $running = $holder.BeginInvoke()
        try {
            $held.Wait(60000) | Should -BeTrue -Because 'the holder runs its script block with the lock held'
            foreach ($case in @(
                    @{ Script = 'Write-SharedMemory -SharedMemory $segment -InputObject late -TimeoutSeconds 2.5'; Id = 'WriteSharedMemoryCommand'; Activity = "Writing to '{0}' (waiting for its lock)" }
                    @{ Script = 'Update-SharedMemory -SharedMemory $segment { 1 } -TimeoutSeconds 2.5'; Id = 'UpdateSharedMemoryCommand'; Activity = "Updating '{0}' (waiting for its lock)" }
                    @{ Script = 'Read-SharedMemory -SharedMemory $segment -TimeoutSeconds 2.5'; Id = 'ReadSharedMemoryCommand'; Activity = "Reading '{0}' (waiting for its lock)" }
                )) {
                $r = Invoke-InRunspace $case.Script -Variables @{ segment = $segment }
                $r.Errors.FullyQualifiedErrorId | Should -Be "SharedMemoryLockTimeout,PsIpc.Commands.$($case.Id)"
                $activity = $case.Activity -f $segment.Name
                @($r.Progress | Where-Object { $_.Activity -eq $activity -and $_.RecordType -eq 'Processing' }).Count | Should -BeGreaterThan 0 -Because $case.Id
                $r.Progress[-1].RecordType | Should -Be 'Completed' -Because $case.Id
            }
        }
        finally {
            $release.Set()
            $holder.EndInvoke($running)
            $holder.Dispose()
        }
        Read-SharedMemory $segment -TimeoutSeconds 30 | Should -BeExactly 'from the holder' -Because 'nothing the timed-out commands did reached the segment'
    }
}

Describe 'Completion offers only what the parameter takes' {
    BeforeAll {
        $script:prefix = 'psipccmp' + [guid]::NewGuid().ToString('N').Substring(0, 6)
    }

    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'Stop-IpcSocketServer and Get-IpcSocketServer offer socket servers, not pipes' {
        $srv = Start-IpcSocketServer
        $pipe = New-IpcPipe -Name "tcp-$prefix"   # a pipe whose name looks like a server's
        foreach ($command in 'Stop-IpcSocketServer', 'Get-IpcSocketServer -Name') {
            $offered = Get-Completion "$command tcp"
            $offered | Should -Contain $srv.Name -Because $command
            $offered | Should -Not -Contain "tcp-$prefix" -Because $command
        }
    }

    It 'never offers a name that is ambiguous where it would be used, but Get-IpcChannel (a filter) does' {
        $server = New-IpcPipe -Name "$prefix-both"
        $client = New-IpcPipe -Name "$prefix-both" -Connect -TimeoutSeconds 10
        $alone = New-IpcPipe -Name "$prefix-alone"
        foreach ($command in 'Close-IpcChannel', 'Send-IpcMessage', 'Receive-IpcMessage') {
            Get-Completion "$command $prefix" | Should -Be @("$prefix-alone") -Because "$command would fail on $prefix-both"
        }
        Get-Completion "Get-IpcChannel -Name $prefix" | Sort-Object | Should -Be @("$prefix-alone", "$prefix-both")
        { Send-IpcMessage -Channel "$prefix-both" -InputObject 1 } |
            Should -Throw -ErrorId 'ParameterArgumentTransformationError,PsIpc.Commands.SendIpcMessageCommand'
    }

    It 'Invoke-IpcRequest offers channels that can make requests: clients, not servers (OperationNotSupported)' {
        $tcp = Start-IpcSocketServer
        $client = Connect-IpcSocket -Port $tcp.Port -TimeoutSeconds 10
        $pipe = New-IpcPipe -Name "$prefix-solo"                       # a server without a client here
        $segment = New-SharedMemory -Name (New-TestShmName) -Size 4KB    # neither sends nor receives
        $queueName = New-TestShmName
        Close-IpcChannel (New-SharedMemory -Name $queueName -Size 4KB -Queue)
        $queue = New-SharedMemory -Name $queueName -Open                 # the opening end: sends and receives, not a server
        $offered = Get-Completion 'Invoke-IpcRequest '
        $offered | Should -Contain $client.Name
        $offered | Should -Not -Contain $tcp.Name -Because 'a socket server answers requests'
        $offered | Should -Not -Contain "$prefix-solo" -Because 'a pipe server answers requests'
        $offered | Should -Not -Contain $segment.Name
        $offered | Should -Not -Contain $queue.Name -Because 'a shared memory queue would read its own request back'
        Get-Completion "Receive-IpcMessage $queueName" | Should -Be @($queueName) -Because 'the queue itself is offered where it works'
        Get-Completion "Send-IpcMessage $prefix" | Should -Be @("$prefix-solo") -Because 'a server can send, so Send-IpcMessage offers it'
        { Invoke-IpcRequest -Channel $tcp -InputObject 1 -TimeoutSeconds 0 -ErrorAction Stop } |
            Should -Throw -ErrorId 'OperationNotSupported,PsIpc.Commands.InvokeIpcRequestCommand'
        { Invoke-IpcRequest -Channel $pipe.Name -InputObject 1 -TimeoutSeconds 0 -ErrorAction Stop } |
            Should -Throw -ErrorId 'OperationNotSupported,PsIpc.Commands.InvokeIpcRequestCommand'
    }

    It 'Register-IpcMessageEvent offers channels that receive, not a shared memory segment' {
        $segment = New-SharedMemory -Name (New-TestShmName) -Size 4KB
        $queue = New-SharedMemory -Name (New-TestShmName) -Size 4KB -Queue
        $offered = Get-Completion "Register-IpcMessageEvent $TestShmPrefix"
        $offered | Should -Contain $queue.Name
        $offered | Should -Not -Contain $segment.Name
        { Register-IpcMessageEvent -Channel $segment -SourceIdentifier "$prefix-segment" } |
            Should -Throw -ErrorId 'SharedMemoryNotQueue,PsIpc.Commands.RegisterIpcMessageEventCommand'
    }

    It 'Receive-IpcMessage does not offer a shared memory segment (it is read, not received)' {
        $segment = New-SharedMemory -Name (New-TestShmName) -Size 4KB
        $queue = New-SharedMemory -Name (New-TestShmName) -Size 4KB -Queue
        $offered = Get-Completion "Receive-IpcMessage $TestShmPrefix"
        $offered | Should -Contain $queue.Name
        $offered | Should -Not -Contain $segment.Name
        { Receive-IpcMessage -Channel $segment.Name -TimeoutSeconds 0 } | Should -Throw -ErrorId 'SharedMemoryNotQueue,PsIpc.Commands.ReceiveIpcMessageCommand'
    }

    It 'Read-SharedMemory offers the segments open here; New-SharedMemory offers existing names only with -Open or -Force' {
        $segment = New-SharedMemory -Name (New-TestShmName) -Size 4KB
        $queue = New-SharedMemory -Name (New-TestShmName) -Size 4KB -Queue
        $offered = Get-Completion "Read-SharedMemory $TestShmPrefix"
        $offered | Should -Contain $segment.Name
        $offered | Should -Not -Contain $queue.Name
        Get-Completion "New-SharedMemory -Name $TestShmPrefix" | Should -BeNullOrEmpty
        Get-Completion "New-SharedMemory -Open -Name $TestShmPrefix" | Should -Contain $segment.Name
        { New-SharedMemory -Name $segment.Name -Size 4KB } | Should -Throw -ErrorId 'SharedMemoryNameInUse,PsIpc.Commands.NewSharedMemoryCommand'
    }
}

Describe '-Verbose on connect, accept, close and drops' {
    AfterEach {
        Clear-TestState
    }

    It 'tells of the connect, the server''s process and the close with its counters' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $said = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10 -Verbose 4>&1
        $client = $said | Where-Object { $_ -is [PsIpc.Transport.Channels.IpcChannel] }
        $messages = @($said | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message)
        $messages | Should -Contain "Connecting to pipe '$($server.Name)' (waiting up to 10 s for its server)."
        $messages | Should -Contain "Connected to pipe client '$($server.Name)' ($($client.Address)): server process $PID, authenticated."
        'ab', 'c' | Send-IpcMessage $client
        $closed = Close-IpcChannel $client -Verbose 4>&1 | ForEach-Object Message
        $closed | Should -Contain "Closed pipe client '$($server.Name)' ($($client.Address)): sent 2 messages (3 bytes), received 0 (0 bytes), 0 errors, 0 dropped."
    }

    It 'tells a receiving server of the clients it accepts' {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$($env:PSIPC_MODULE_PATH)'; Receive-IpcMessage -Channel `$args[0] -Count 1 -TimeoutSeconds 30 -Verbose").AddArgument($server)
            $async = $ps.BeginInvoke()
            Wait-Until { @($ps.Streams.Verbose | Where-Object Message -Like 'Receiving from*').Count -gt 0 } -TimeoutSeconds 30 | Should -BeTrue
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
            Send-IpcMessage $client 'hi'
            $ps.EndInvoke($async) | Should -Be 'hi'
            $said = @($ps.Streams.Verbose | ForEach-Object Message)
            $said | Should -Contain "Receiving from pipe server '$($server.Name)' ($($server.Address)): 0 peer(s) connected."
            $said | Should -Contain "'$($server.Name)' accepted 1 client(s); 1 connected now, 1 since it started."
        }
        finally { $ps.Dispose() }
    }

    It 'tells a receiving UDP server of the datagrams it drops' {
        $srv = Start-IpcSocketServer -Udp -Framing Raw -MaxMessageSize 10
        $ps = [powershell]::Create()
        $udp = [System.Net.Sockets.UdpClient]::new()
        try {
            $null = $ps.AddScript("Import-Module '$($env:PSIPC_MODULE_PATH)'; Receive-IpcMessage -Channel `$args[0] -Count 1 -TimeoutSeconds 30 -Verbose").AddArgument($srv)
            $async = $ps.BeginInvoke()
            Wait-Until { @($ps.Streams.Verbose | Where-Object Message -Like 'Receiving from*').Count -gt 0 } -TimeoutSeconds 30 | Should -BeTrue
            $null = $udp.Send([byte[]]::new(11), 11, '127.0.0.1', $srv.Port)   # over -MaxMessageSize: dropped
            $null = $udp.Send([byte[]](1, 2, 3), 3, '127.0.0.1', $srv.Port)
            $got = $ps.EndInvoke($async)
            $got[0].Length | Should -Be 3
            Wait-Until { $srv.Dropped -eq 1 } | Should -BeTrue
            @($ps.Streams.Verbose | Where-Object Message -Like "'$($srv.Name)' dropped 1 more message(s) (1 in all): the last, *").Count | Should -Be 1
            @($ps.Streams.Error | Where-Object { $_.FullyQualifiedErrorId -like 'MessageTooLarge,*' }).Count | Should -Be 1 -Because 'the drop is also an error in the stream'
        }
        finally {
            $udp.Dispose()
            $ps.Dispose()
        }
    }
}
