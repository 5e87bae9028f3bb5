<#
    Every error a PsIpc cmdlet reports carries one of the module's own ids, so that a script can catch it by
    name and the id stays the same from release to release:

      - the names of PsIpc.Transport.IpcErrorKind (ErrorMapping turns a transport failure into its kind's name);
      - the ids the module's C# gives its own ErrorRecords (EncodeFailed, ChannelNotFound...), read from the
        source, so a new one is allowed the moment it is written and a misspelt one is not;
      - PowerShell's own parameter-binding ids: binding happens before any PsIpc code runs.

    A .NET exception's type name (System.Net.Sockets.SocketException), a RuntimeException from a wildcard
    or a provider id such as DriveNotFound is none of these. The sweep feeds bad inputs to every cmdlet the
    manifest exports and checks each error's id, and each case names the exact ids it expects.
#>

BeforeDiscovery {
    . $PSScriptRoot/common.ps1
    $Exported = @((Import-PowerShellDataFile -LiteralPath (Join-Path $RepoRoot 'PsIpc.psd1')).CmdletsToExport)

    # Each case: what is wrong, the errors it must give (ids before the comma; the cmdlet under test is
    # the second part unless an id names its own), and what to run, given the fixtures ($F, see BeforeAll).
    $Cases = @{
        'New-IpcPipe'           = @(
            @{ Case = 'a name with a slash'; Expect = 'InvalidPipeName'; Act = { param($F) New-IpcPipe -Name 'bad/name' } }
            @{ Case = 'a wildcard as a name'; Expect = 'InvalidPipeName'; Act = { param($F) New-IpcPipe -Name 'pipe*' } }
            @{ Case = 'a name with a NUL character'; Expect = 'InvalidPipeName'; Act = { param($F) New-IpcPipe -Name "a`0b" } }
            @{ Case = 'an empty name'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) New-IpcPipe -Name '' } }
            @{ Case = 'a name too long for a socket path'; Expect = 'PipeNameTooLong'; Act = { param($F) New-IpcPipe -Name ('x' * 100) } }
            @{ Case = 'a name another server has'; Expect = 'PipeNameInUse'; Act = { param($F) New-IpcPipe -Name $F.Pipe.Name } }
            @{ Case = 'a missing pipe, polled once (-TimeoutSeconds 0)'; Expect = 'ConnectTimeout'; Act = { param($F) New-IpcPipe -Name $F.MissingName -Connect -TimeoutSeconds 0 } }
            @{ Case = 'a client name with a wildcard'; Expect = 'InvalidPipeName'; Act = { param($F) New-IpcPipe -Name 'psipc-*' -Connect -TimeoutSeconds 0 } }
            @{ Case = '-MaxClients 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) New-IpcPipe -MaxClients 0 } }
            @{ Case = '-MaxMessageSize -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) New-IpcPipe -MaxMessageSize -1 } }
            @{ Case = '-TimeoutSeconds -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) New-IpcPipe -Name $F.MissingName -Connect -TimeoutSeconds -1 } }
            @{ Case = 'an unknown parameter'; Expect = 'NamedParameterNotFound'; Act = { param($F) New-IpcPipe -Nmae 'x' } }
        )
        'Send-IpcMessage'       = @(
            @{ Case = 'a channel name nobody opened'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Send-IpcMessage -Channel $F.MissingName -InputObject 1 } }
            @{ Case = 'a wildcard as the channel'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Send-IpcMessage -Channel '*' -InputObject 1 } }
            @{ Case = 'a null channel'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Send-IpcMessage -Channel $null -InputObject 1 } }
            @{ Case = 'a number as the channel'; Expect = 'CannotConvertArgumentNoMessage'; Act = { param($F) Send-IpcMessage -Channel 42 -InputObject 1 } }
            @{ Case = 'a closed channel'; Expect = 'ChannelClosed'; Act = { param($F) Send-IpcMessage -Channel $F.ClosedPipe -InputObject 1 } }
            @{ Case = 'a closed socket client'; Expect = 'ChannelClosed'; Act = { param($F) Send-IpcMessage -Channel $F.ClosedClient -InputObject 1 } }
            @{ Case = 'a shared memory segment (not a queue)'; Expect = 'SharedMemoryNotQueue'; Act = { param($F) Send-IpcMessage -Channel $F.Segment -InputObject 1 -TimeoutSeconds 0 } }
            @{ Case = 'a server without a client, -TimeoutSeconds 0'; Expect = 'SendTimeout'; Act = { param($F) Send-IpcMessage -Channel $F.Pipe -InputObject 1 -TimeoutSeconds 0 } }
            @{ Case = 'text that is no byte array (-Format Bytes)'; Expect = 'EncodeFailed'; Act = { param($F) Send-IpcMessage -Channel $F.Pipe -InputObject 'abc' -Format Bytes -TimeoutSeconds 0 } }
            @{ Case = 'an unknown -Format'; Expect = 'CannotConvertArgumentNoMessage'; Act = { param($F) Send-IpcMessage -Channel $F.Pipe -InputObject 1 -Format Yaml } }
            @{ Case = '-Depth 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Send-IpcMessage -Channel $F.Pipe -InputObject 1 -Depth 0 } }
            @{ Case = '-TimeoutSeconds -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Send-IpcMessage -Channel $F.Pipe -InputObject 1 -TimeoutSeconds -1 } }
            @{ Case = 'a message over the peer''s -MaxMessageSize 0 (the handshake works; an empty message passes)'; Expect = 'MessageTooLarge'; Act = {
                    param($F)
                    $server = New-IpcPipe -Name (New-TestPipeName) -MaxMessageSize 0
                    $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
                    try {
                        Send-IpcMessage -Channel $client -InputObject ''
                        Send-IpcMessage -Channel $client -InputObject 'x'
                    }
                    finally { Close-IpcChannel $client, $server }
                }
            }
        )
        'Invoke-IpcRequest'     = @(
            @{ Case = 'a channel name nobody opened'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Invoke-IpcRequest -Channel $F.MissingName -InputObject 1 } }
            @{ Case = 'a closed channel'; Expect = 'ChannelClosed'; Act = { param($F) Invoke-IpcRequest -Channel $F.ClosedClient -InputObject 1 -TimeoutSeconds 0 } }
            @{ Case = 'a server channel (servers answer requests)'; Expect = 'OperationNotSupported'; Act = { param($F) Invoke-IpcRequest -Channel $F.Pipe -InputObject 1 -TimeoutSeconds 0 } }
            @{ Case = 'a shared memory queue (it would read its own request back)'; Expect = 'OperationNotSupported'; Act = {
                    param($F)
                    $opened = New-SharedMemory -Name $F.Queue.Name -Open
                    try { Invoke-IpcRequest -Channel $opened -InputObject 1 -TimeoutSeconds 0 }
                    finally { Close-IpcChannel $opened }
                }
            }
            @{ Case = '-Depth 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Invoke-IpcRequest -Channel $F.ClosedClient -InputObject 1 -Depth 0 } }
            @{ Case = '-TimeoutSeconds -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Invoke-IpcRequest -Channel $F.ClosedClient -InputObject 1 -TimeoutSeconds -1 } }
            @{ Case = 'a peer that does not answer in time'; Expect = 'ReceiveTimeout'; Act = {
                    param($F)
                    $client = Connect-IpcSocket -Port $F.Server.Port -TimeoutSeconds 10
                    try { Invoke-IpcRequest -Channel $client -InputObject 'anyone?' -TimeoutSeconds 0.2 }
                    finally { Close-IpcChannel $client }
                }
            }
            @{ Case = 'text that is no byte array (-Format Bytes)'; Expect = 'EncodeFailed'; Act = {
                    param($F)
                    $client = Connect-IpcSocket -Port $F.Server.Port -TimeoutSeconds 10
                    try { Invoke-IpcRequest -Channel $client -InputObject 'abc' -Format Bytes -TimeoutSeconds 0 }
                    finally { Close-IpcChannel $client }
                }
            }
            @{ Case = 'a handler that throws'; Expect = 'HandlerFailed'; Act = {
                    param($F)
                    $server = New-IpcPipe -Name (New-TestPipeName) -ScriptBlock { throw 'handler failure' }
                    $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
                    try { Invoke-IpcRequest -Channel $client -InputObject 1 -TimeoutSeconds 10 }
                    finally { Close-IpcChannel $client, $server }
                }
            }
        )
        'Receive-IpcMessage'    = @(
            @{ Case = 'a channel name nobody opened'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Receive-IpcMessage -Channel $F.MissingName -TimeoutSeconds 0 } }
            @{ Case = 'a closed channel'; Expect = 'ChannelClosed'; Act = { param($F) Receive-IpcMessage -Channel $F.ClosedPipe -TimeoutSeconds 0 } }
            @{ Case = 'a shared memory segment (not a queue)'; Expect = 'SharedMemoryNotQueue'; Act = { param($F) Receive-IpcMessage -Channel $F.Segment -TimeoutSeconds 0 } }
            @{ Case = 'nothing to receive, -TimeoutSeconds 0'; Expect = 'ReceiveTimeout'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -TimeoutSeconds 0 } }
            @{ Case = '-Count 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -Count 0 } }
            @{ Case = '-TimeoutSeconds -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -TimeoutSeconds -1 } }
            @{ Case = '-Encoding that no system knows'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -Encoding no-such-encoding -TimeoutSeconds 0 } }
            @{ Case = 'CliXml from a TCP client that proved no secret'; Expect = 'DecodeFailed'; Act = {
                    param($F)
                    $server = Start-IpcSocketServer
                    $client = Connect-IpcSocket -Port $server.Port -TimeoutSeconds 10
                    try {
                        Send-IpcMessage -Channel $client -InputObject @{ Objects = 'refused' }
                        Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 30
                    }
                    finally { Close-IpcChannel $client; Stop-IpcSocketServer $server }
                }
            }
            @{ Case = 'a Json message that is not JSON (skipped; the next one is delivered)'; Expect = 'DecodeFailed'; Act = {
                    param($F)
                    $server = New-IpcPipe -Name (New-TestPipeName)
                    $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
                    try {
                        # Send-IpcMessage writes only valid JSON: the frame a foreign peer might send, sent as it is.
                        $client.Send([PsIpc.Transport.Framing.MessageFormat]::Json, [System.Text.Encoding]::UTF8.GetBytes('{not json'),
                            [PsIpc.Transport.Deadline]::Infinite, [System.Threading.CancellationToken]::None)
                        Send-IpcMessage -Channel $client -InputObject 'next'
                        Receive-IpcMessage -Channel $server -Count 2 -TimeoutSeconds 30
                    }
                    finally { Close-IpcChannel $client, $server }
                }
            }
            @{ Case = 'a channel whose messages raise events (Register-IpcMessageEvent)'; Expect = 'ChannelHasSubscription'; Act = {
                    param($F)
                    $server = New-IpcPipe -Name (New-TestPipeName)
                    try {
                        Register-IpcMessageEvent -Channel $server -SourceIdentifier "events-$($server.Name)"
                        Receive-IpcMessage -Channel $server -TimeoutSeconds 0
                    }
                    finally { Unregister-Event -SourceIdentifier "events-$($server.Name)"; Close-IpcChannel $server }
                }
            }
            @{ Case = 'a UDP server that is gone'; Expect = 'ConnectionRefused'; Act = {
                    param($F)
                    $client = Connect-IpcSocket -Udp -Port $F.ClosedUdpPort
                    try {
                        Send-IpcMessage -Channel $client -InputObject 'anyone?'
                        # The port-unreachable answer arrives after the send: the first error ends the wait.
                        Receive-IpcMessage -Channel $client -TimeoutSeconds 30 -ErrorAction Stop
                    }
                    finally { Close-IpcChannel $client }
                }
            }
            @{ Case = '-Buffer with -Envelope'; Expect = 'AmbiguousParameterSet'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -Buffer ([byte[]]::new(4)) -Envelope } }
            @{ Case = 'a null -Buffer'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -Buffer $null } }
            @{ Case = '-Buffer, nothing to receive, -TimeoutSeconds 0'; Expect = 'ReceiveTimeout'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -Buffer ([byte[]]::new(4)) -TimeoutSeconds 0 } }
            @{ Case = '-OutFile in a folder that does not exist'; Expect = 'OutFileFailed'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -OutFile (Join-Path $F.MissingName 'x.bin') -TimeoutSeconds 0 } }
            @{ Case = '-OutFile of another provider (Variable:)'; Expect = 'OutFileFailed'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -OutFile 'variable:notAFile' -TimeoutSeconds 0 } }
            @{ Case = 'an empty -OutFile'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Receive-IpcMessage -Channel $F.Pipe -OutFile '' } }
            @{ Case = 'a message longer than -Buffer (it stays in the channel)'; Expect = 'BufferTooSmall'; Act = {
                    param($F)
                    $server = New-IpcPipe -Name (New-TestPipeName)
                    $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
                    try {
                        Send-IpcMessage -Channel $client -InputObject ([byte[]]::new(100))
                        Receive-IpcMessage -Channel $server -Buffer ([byte[]]::new(99)) -TimeoutSeconds 30
                    }
                    finally { Close-IpcChannel $client, $server }
                }
            }
        )
        'Register-IpcMessageEvent' = @(
            @{ Case = 'a channel name nobody opened'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Register-IpcMessageEvent -Channel $F.MissingName } }
            @{ Case = 'a closed channel'; Expect = 'ChannelClosed'; Act = { param($F) Register-IpcMessageEvent -Channel $F.ClosedPipe } }
            @{ Case = 'a shared memory segment (not a queue)'; Expect = 'SharedMemoryNotQueue'; Act = { param($F) Register-IpcMessageEvent -Channel $F.Segment } }
            @{ Case = '-Action with -Forward'; Expect = 'AmbiguousParameterSet'; Act = { param($F) Register-IpcMessageEvent -Channel $F.Pipe -Action { } -Forward } }
            @{ Case = 'an empty -SourceIdentifier'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Register-IpcMessageEvent -Channel $F.Pipe -SourceIdentifier '' } }
            @{ Case = 'a second subscription on one channel'; Expect = 'ChannelHasSubscription'; Act = {
                    param($F)
                    $server = New-IpcPipe -Name (New-TestPipeName)
                    try {
                        Register-IpcMessageEvent -Channel $server -SourceIdentifier "first-$($server.Name)"
                        Register-IpcMessageEvent -Channel $server -SourceIdentifier "second-$($server.Name)"
                    }
                    finally { Unregister-Event -SourceIdentifier "first-$($server.Name)"; Close-IpcChannel $server }
                }
            }
            @{ Case = 'a source identifier another subscription has'; Expect = 'SourceIdentifierInUse'; Act = {
                    param($F)
                    $id = "taken-$(New-TestPipeName)"
                    $null = Register-EngineEvent -SourceIdentifier $id -Action { }
                    try { Register-IpcMessageEvent -Channel $F.Pipe -SourceIdentifier $id }
                    finally { Unregister-Event -SourceIdentifier $id }
                }
            }
            @{ Case = 'a server with a -ScriptBlock handler'; Expect = 'ChannelHasHandler'; Act = {
                    param($F)
                    $server = New-IpcPipe -Name (New-TestPipeName) -ScriptBlock { $args[0] }
                    try { Register-IpcMessageEvent -Channel $server } finally { Close-IpcChannel $server }
                }
            }
        )
        'Update-SharedMemory'   = @(
            @{ Case = 'a name not open in this process'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Update-SharedMemory -SharedMemory (New-TestShmName) -ScriptBlock { 1 } } }
            @{ Case = 'a pipe (another kind of channel)'; Expect = 'CannotConvertArgumentNoMessage'; Act = { param($F) Update-SharedMemory -SharedMemory $F.Pipe -ScriptBlock { 1 } } }
            @{ Case = 'a queue'; Expect = 'SharedMemoryIsQueue'; Act = { param($F) Update-SharedMemory -SharedMemory $F.Queue -ScriptBlock { 1 } } }
            @{ Case = 'a closed segment'; Expect = 'ChannelClosed'; Act = { param($F) Update-SharedMemory -SharedMemory $F.ClosedSegment -ScriptBlock { 1 } } }
            @{ Case = 'a script block that throws (nothing written)'; Expect = 'UpdateScriptFailed'; Act = { param($F) Update-SharedMemory -SharedMemory $F.Segment -ScriptBlock { throw 'no' } } }
            @{ Case = 'a script block that reads the same segment'; Expect = 'SharedMemoryLockReentry'; Act = { param($F) Update-SharedMemory -SharedMemory $F.Segment -ScriptBlock { Read-SharedMemory $F.Segment } } }
            @{ Case = 'a new value larger than the segment'; Expect = 'SharedMemoryTooLarge'; Act = { param($F) Update-SharedMemory -SharedMemory $F.Segment -ScriptBlock { 'x' * 5000 } } }
            @{ Case = 'text that is no byte array (-Format Bytes)'; Expect = 'EncodeFailed'; Act = { param($F) Update-SharedMemory -SharedMemory $F.Segment -ScriptBlock { 'abc' } -Format Bytes } }
            @{ Case = '-Depth 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Update-SharedMemory -SharedMemory $F.Segment -ScriptBlock { 1 } -Depth 0 } }
            @{ Case = '-TimeoutSeconds -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Update-SharedMemory -SharedMemory $F.Segment -ScriptBlock { 1 } -TimeoutSeconds -1 } }
        )
        'Close-IpcChannel'      = @(
            @{ Case = 'a channel name nobody opened'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Close-IpcChannel -Channel $F.MissingName } }
            @{ Case = 'a wildcard as the channel'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Close-IpcChannel -Channel 'psipc*' } }
            @{ Case = 'a name a server and a client share (ambiguous, not the one opened last)'; Expect = 'ParameterArgumentTransformationError'; Act = {
                    param($F)
                    $server = New-IpcPipe -Name (New-TestPipeName)
                    $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 10
                    try { Close-IpcChannel -Channel $server.Name }
                    finally { Close-IpcChannel $client, $server }
                }
            }
            @{ Case = 'a null channel'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Close-IpcChannel -Channel $null } }
            @{ Case = 'a channel closed already (no error)'; Expect = @(); Act = { param($F) Close-IpcChannel -Channel $F.ClosedPipe } }
            @{ Case = '-TimeoutSeconds -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Close-IpcChannel -Channel $F.ClosedPipe -TimeoutSeconds -1 } }
        )
        'Get-IpcChannel'        = @(
            @{ Case = 'an unclosed bracket'; Expect = 'InvalidWildcardPattern'; Act = { param($F) Get-IpcChannel -Name '[' } }
            @{ Case = 'a bracket inside a name'; Expect = 'InvalidWildcardPattern'; Act = { param($F) Get-IpcChannel -Name 'psipc-[a' } }
            @{ Case = 'a bad pattern among good names: the others are still looked up'; Expect = 'InvalidWildcardPattern', 'ChannelNotFound'; Act = { param($F) Get-IpcChannel -Name '[', $F.MissingName, $F.Pipe.Name } }
            @{ Case = 'a name nobody opened'; Expect = 'ChannelNotFound'; Act = { param($F) Get-IpcChannel -Name $F.MissingName } }
            @{ Case = 'a pattern that matches nothing (no error)'; Expect = @(); Act = { param($F) Get-IpcChannel -Name "$($F.MissingName)*" } }
            @{ Case = 'an empty name'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Get-IpcChannel -Name '' } }
        )
        'New-SharedMemory'      = @(
            @{ Case = 'a name with a slash'; Expect = 'InvalidSharedMemoryName'; Act = { param($F) New-SharedMemory -Name 'bad/name' -Size 1KB } }
            @{ Case = 'a wildcard as a name'; Expect = 'InvalidSharedMemoryName'; Act = { param($F) New-SharedMemory -Name 'shm*' -Size 1KB } }
            @{ Case = 'a name with a NUL character'; Expect = 'InvalidSharedMemoryName'; Act = { param($F) New-SharedMemory -Name "a`0b" -Size 1KB } }
            @{ Case = 'a size under 64 bytes'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) New-SharedMemory -Name (New-TestShmName) -Size 1 } }
            @{ Case = 'a size over 1 TiB'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) New-SharedMemory -Name (New-TestShmName) -Size 2TB } }
            @{ Case = 'a name that exists'; Expect = 'SharedMemoryNameInUse'; Act = { param($F) New-SharedMemory -Name $F.Segment.Name -Size 1KB } }
            @{ Case = 'opening a name that does not exist'; Expect = 'SharedMemoryNotFound'; Act = { param($F) New-SharedMemory -Name (New-TestShmName) -Open } }
            @{ Case = '-Open with -Queue'; Expect = 'AmbiguousParameterSet'; Act = { param($F) New-SharedMemory -Name (New-TestShmName) -Open -Queue } }
            @{ Case = '-Open with -Force'; Expect = 'AmbiguousParameterSet'; Act = { param($F) New-SharedMemory -Name $F.Segment.Name -Open -Force } }
            @{ Case = '-Force with a bad name'; Expect = 'InvalidSharedMemoryName'; Act = { param($F) New-SharedMemory -Name 'bad/name' -Size 1KB -Force } }
        )
        'Read-SharedMemory'     = @(
            @{ Case = 'a name not open in this process'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Read-SharedMemory -SharedMemory (New-TestShmName) } }
            @{ Case = 'the name of a pipe (another kind of channel)'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Read-SharedMemory -SharedMemory $F.Pipe.Name } }
            @{ Case = 'a queue'; Expect = 'SharedMemoryIsQueue'; Act = { param($F) Read-SharedMemory -SharedMemory $F.Queue } }
            @{ Case = 'a closed segment'; Expect = 'ChannelClosed'; Act = { param($F) Read-SharedMemory -SharedMemory $F.ClosedSegment } }
            @{ Case = 'bytes past the end'; Expect = 'SharedMemoryTooLarge'; Act = { param($F) Read-SharedMemory -SharedMemory $F.Segment -Offset 5000 -Count 10 } }
            @{ Case = 'the largest offset'; Expect = 'SharedMemoryTooLarge'; Act = { param($F) Read-SharedMemory -SharedMemory $F.Segment -Offset ([long]::MaxValue) -Count 1 } }
            @{ Case = '-Count -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Read-SharedMemory -SharedMemory $F.Segment -Count -1 } }
            @{ Case = 'no value yet, -TimeoutSeconds 0 (no error)'; Expect = @(); Act = { param($F) Read-SharedMemory -SharedMemory $F.Segment -TimeoutSeconds 0 } }
        )
        'Write-SharedMemory'    = @(
            @{ Case = 'a queue'; Expect = 'SharedMemoryIsQueue'; Act = { param($F) Write-SharedMemory -SharedMemory $F.Queue -InputObject 1 } }
            @{ Case = 'a closed segment'; Expect = 'ChannelClosed'; Act = { param($F) Write-SharedMemory -SharedMemory $F.ClosedSegment -InputObject 1 } }
            @{ Case = 'a pipe (another kind of channel)'; Expect = 'CannotConvertArgumentNoMessage'; Act = { param($F) Write-SharedMemory -SharedMemory $F.Pipe -InputObject 1 } }
            @{ Case = 'a value larger than the segment'; Expect = 'SharedMemoryTooLarge'; Act = { param($F) Write-SharedMemory -SharedMemory $F.Segment -InputObject ('x' * 5000) } }
            @{ Case = 'bytes past the end'; Expect = 'SharedMemoryTooLarge'; Act = { param($F) Write-SharedMemory -SharedMemory $F.Segment -Bytes ([byte[]](1, 2, 3)) -Offset 1023 } }
            @{ Case = 'the largest offset'; Expect = 'SharedMemoryTooLarge'; Act = { param($F) Write-SharedMemory -SharedMemory $F.Segment -Bytes ([byte[]](1, 2)) -Offset ([long]::MaxValue) } }
            @{ Case = 'text that is no byte array (-Format Bytes)'; Expect = 'EncodeFailed'; Act = { param($F) Write-SharedMemory -SharedMemory $F.Segment -InputObject 'abc' -Format Bytes } }
            @{ Case = '-Depth 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Write-SharedMemory -SharedMemory $F.Segment -InputObject 1 -Depth 0 } }
        )
        'Remove-SharedMemory'   = @(
            @{ Case = 'a name that does not exist'; Expect = 'SharedMemoryNotFound'; Act = { param($F) Remove-SharedMemory -Name (New-TestShmName) -Confirm:$false } }
            @{ Case = 'a name with a slash'; Expect = 'InvalidSharedMemoryName'; Act = { param($F) Remove-SharedMemory -Name '../etc' -Confirm:$false } }
            @{ Case = 'a wildcard (names are exact)'; Expect = 'InvalidSharedMemoryName'; Act = { param($F) Remove-SharedMemory -Name 'shm*' -Confirm:$false } }
            @{ Case = 'several names, one missing: the others go on'; Expect = 'SharedMemoryNotFound', 'InvalidSharedMemoryName'; Act = { param($F) Remove-SharedMemory -Name (New-TestShmName), 'bad/name' -Confirm:$false } }
            @{ Case = 'an empty name'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Remove-SharedMemory -Name '' -Confirm:$false } }
        )
        'Get-SharedMemory'      = @(
            @{ Case = 'an unclosed bracket'; Expect = 'InvalidWildcardPattern'; Act = { param($F) Get-SharedMemory -Name '[' } }
            @{ Case = 'a name that does not exist'; Expect = 'SharedMemoryNotFound'; Act = { param($F) Get-SharedMemory -Name (New-TestShmName) } }
            @{ Case = 'a pattern that matches nothing (no error)'; Expect = @(); Act = { param($F) Get-SharedMemory -Name "$(New-TestShmName)*" } }
            @{ Case = 'an empty name'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Get-SharedMemory -Name '' } }
        )
        'Start-IpcSocketServer' = @(
            @{ Case = 'a -Path under a regular file (its directory cannot be created)'; Expect = 'SocketPathInvalid'; Act = { param($F) Start-IpcSocketServer -Path (Join-Path $F.File 'server.sock') } }
            @{ Case = 'a -Path where the file system takes no socket (/proc)'; Expect = 'SocketPathInvalid'; Act = { param($F) Start-IpcSocketServer -Path "/proc/psipc-$PID.sock" } }
            @{ Case = 'a -Path in a directory of /proc that cannot be created'; Expect = 'SocketPathInvalid'; Act = { param($F) Start-IpcSocketServer -Path "/proc/psipc-$PID/server.sock" } }
            @{ Case = 'a -Path with a NUL character'; Expect = 'SocketPathInvalid'; Act = { param($F) Start-IpcSocketServer -Path (Join-Path $F.Dir "a`0b.sock") } }
            @{ Case = 'a -Path on a drive that does not exist'; Expect = 'SocketPathInvalid'; Act = { param($F) Start-IpcSocketServer -Path 'NoSuchDrive:\server.sock' } }
            @{ Case = 'a -Path of another provider (Env:)'; Expect = 'SocketPathInvalid'; Act = { param($F) Start-IpcSocketServer -Path 'Env:\server.sock' } }
            @{ Case = 'a -Path too long for sun_path'; Expect = 'SocketPathTooLong'; Act = { param($F) Start-IpcSocketServer -Path (Join-Path $F.Dir ('z' * 200)) } }
            @{ Case = 'a -Path that is a regular file'; Expect = 'AddressInUse'; Act = { param($F) Start-IpcSocketServer -Path $F.File } }
            @{ Case = 'a -Path another server serves'; Expect = 'AddressInUse'; Act = { param($F) Start-IpcSocketServer -Path $F.UnixServer.Path } }
            @{ Case = 'a port in use'; Expect = 'AddressInUse'; Act = { param($F) Start-IpcSocketServer -Port $F.Server.Port } }
            @{ Case = 'a UDP port in use'; Expect = 'AddressInUse'; Act = { param($F) Start-IpcSocketServer -Udp -Port $F.UdpServer.Port } }
            @{ Case = 'an -Address that is no IP address'; Expect = 'InvalidAddress'; Act = { param($F) Start-IpcSocketServer -Address 'not an address' } }
            @{ Case = 'a non-loopback -Address without -Secret'; Expect = 'AuthenticationRequired'; Act = { param($F) Start-IpcSocketServer -Address '192.0.2.1' } }
            @{ Case = 'a non-loopback UDP -Address'; Expect = 'AuthenticationRequired'; Act = { param($F) Start-IpcSocketServer -Udp -Address '192.0.2.1' } }
            @{ Case = 'an -Address not of this machine (with -Secret)'; Expect = 'ConnectFailed'; Act = { param($F) Start-IpcSocketServer -Address '192.0.2.1' -Secret $F.Secret } }
            @{ Case = 'a one-character -Secret'; Expect = 'SecretTooShort'; Act = { param($F) Start-IpcSocketServer -Secret $F.ShortSecret } }
            @{ Case = 'a 15-character -Secret'; Expect = 'SecretTooShort'; Act = { param($F) Start-IpcSocketServer -Secret (ConvertTo-SecureString ('s' * 15) -AsPlainText -Force) } }
            @{ Case = 'a one-character -Secret as a credential'; Expect = 'SecretTooShort'; Act = { param($F) Start-IpcSocketServer -Secret ([pscredential]::new('user', $F.ShortSecret)) } }
            @{ Case = 'an empty -Secret'; Expect = 'EmptySecret'; Act = { param($F) Start-IpcSocketServer -Secret ([securestring]::new()) } }
            @{ Case = 'a -Secret as plain text'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Start-IpcSocketServer -Secret 'plain text, in the history' } }
            @{ Case = '-Port 70000'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Start-IpcSocketServer -Port 70000 } }
            @{ Case = '-HandshakeTimeoutSeconds 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Start-IpcSocketServer -HandshakeTimeoutSeconds 0 } }
            @{ Case = '-ThrottleLimit 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Start-IpcSocketServer -ThrottleLimit 0 -ScriptBlock { $args } } }
            @{ Case = '-Udp with -Secret'; Expect = 'AmbiguousParameterSet'; Act = { param($F) Start-IpcSocketServer -Udp -Secret $F.Secret } }
        )
        'Connect-IpcQueue'      = @(
            @{ Case = 'not an AMQP URI'; Expect = 'HostNotFound'; Act = { param($F) Connect-IpcQueue -Uri 'http://localhost/' -Queue q } }
            @{ Case = 'a host name that does not resolve'; Expect = 'HostNotFound'; Act = { param($F) Connect-IpcQueue -Uri 'amqp://no-such-host.invalid/' -Queue q -TimeoutSeconds 5 } }
            @{ Case = 'a port nobody listens on, tried once (-TimeoutSeconds 0)'; Expect = 'BrokerUnreachable'; Act = { param($F) Connect-IpcQueue -Uri 'amqp://127.0.0.1:1/' -Queue q -TimeoutSeconds 0 } }
            @{ Case = 'an empty -Queue'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Connect-IpcQueue -Uri 'amqp://127.0.0.1:1/' -Queue '' } }
            @{ Case = '-Prefetch 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Connect-IpcQueue -Uri 'amqp://127.0.0.1:1/' -Queue q -Prefetch 0 } }
            @{ Case = '-MaxMessageSize over the broker''s 128 MiB'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Connect-IpcQueue -Uri 'amqp://127.0.0.1:1/' -Queue q -MaxMessageSize (128MB + 1) } }
            @{ Case = 'a thumbprint that is no thumbprint'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Connect-IpcQueue -Uri 'amqps://127.0.0.1:1/' -Queue q -CertificateThumbprint 'xyz' } }
            @{ Case = 'an exchange type PsIpc does not declare'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Connect-IpcQueue -Uri 'amqp://127.0.0.1:1/' -Exchange x -ExchangeType Headers } }
            @{ Case = '-Subscribe with -Queue'; Expect = 'AmbiguousParameterSet'; Act = { param($F) Connect-IpcQueue -Uri 'amqp://127.0.0.1:1/' -Queue q -Subscribe } }
            @{ Case = '-TimeoutSeconds -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Connect-IpcQueue -Uri 'amqp://127.0.0.1:1/' -Queue q -TimeoutSeconds -1 } }
        )
        'Connect-IpcSocket'     = @(
            @{ Case = 'a port nobody listens on'; Expect = 'ConnectionRefused'; Act = { param($F) Connect-IpcSocket -Port 1 -TimeoutSeconds 5 } }
            @{ Case = 'a host name that does not resolve'; Expect = 'HostNotFound'; Act = { param($F) Connect-IpcSocket -ComputerName 'no-such-host.invalid' -Port 1 -TimeoutSeconds 5 } }
            @{ Case = 'a -Path with no socket'; Expect = 'ConnectionRefused'; Act = { param($F) Connect-IpcSocket -Path (Join-Path $F.Dir 'none.sock') -TimeoutSeconds 0 } }
            @{ Case = 'a -Path that is a regular file'; Expect = 'ConnectionRefused'; Act = { param($F) Connect-IpcSocket -Path $F.File -TimeoutSeconds 0 } }
            @{ Case = 'a -Path with a NUL character'; Expect = 'SocketPathInvalid'; Act = { param($F) Connect-IpcSocket -Path (Join-Path $F.Dir "a`0b.sock") -TimeoutSeconds 0 } }
            @{ Case = 'a -Path on a drive that does not exist'; Expect = 'SocketPathInvalid'; Act = { param($F) Connect-IpcSocket -Path 'NoSuchDrive:\server.sock' -TimeoutSeconds 0 } }
            @{ Case = 'a -Path of another provider (Env:)'; Expect = 'SocketPathInvalid'; Act = { param($F) Connect-IpcSocket -Path 'Env:\server.sock' -TimeoutSeconds 0 } }
            @{ Case = 'a -Path too long for sun_path'; Expect = 'SocketPathTooLong'; Act = { param($F) Connect-IpcSocket -Path (Join-Path $F.Dir ('z' * 200)) -TimeoutSeconds 0 } }
            @{ Case = 'a one-character -Secret'; Expect = 'SecretTooShort'; Act = { param($F) Connect-IpcSocket -Port $F.SecretServer.Port -Secret $F.ShortSecret -TimeoutSeconds 5 } }
            @{ Case = 'a 15-character -Secret over a Unix socket'; Expect = 'SecretTooShort'; Act = { param($F) Connect-IpcSocket -Path $F.UnixServer.Path -Secret (ConvertTo-SecureString ('s' * 15) -AsPlainText -Force) -TimeoutSeconds 5 } }
            @{ Case = 'an empty -Secret'; Expect = 'EmptySecret'; Act = { param($F) Connect-IpcSocket -Port $F.SecretServer.Port -Secret ([securestring]::new()) -TimeoutSeconds 5 } }
            @{ Case = 'a -Secret the server does not expect'; Expect = 'AuthenticationFailed'; Act = { param($F) Connect-IpcSocket -Port $F.Server.Port -Secret $F.Secret -TimeoutSeconds 10 } }
            @{ Case = 'a wrong -Secret'; Expect = 'AuthenticationFailed'; Act = { param($F) Connect-IpcSocket -Port $F.SecretServer.Port -Secret $F.WrongSecret -TimeoutSeconds 10 } }
            @{ Case = 'no -Secret for a server that asks for one'; Expect = 'AuthenticationRequired'; Act = { param($F) Connect-IpcSocket -Port $F.SecretServer.Port -TimeoutSeconds 10 } }
            @{ Case = '-UseTls with a server without TLS'; Expect = 'AuthenticationFailed'; Act = { param($F) Connect-IpcSocket -Port $F.Server.Port -UseTls -TimeoutSeconds 10 } }
            @{ Case = 'a thumbprint that is no thumbprint'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Connect-IpcSocket -Port $F.Server.Port -CertificateThumbprint 'xyz' } }
            @{ Case = '-Port 0'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Connect-IpcSocket -Port 0 } }
            @{ Case = 'an empty -ComputerName'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Connect-IpcSocket -ComputerName '' -Port 1 } }
            @{ Case = '-Udp with -Secret'; Expect = 'AmbiguousParameterSet'; Act = { param($F) Connect-IpcSocket -Udp -Port 1 -Secret $F.Secret } }
            @{ Case = 'a live server, polled once (-TimeoutSeconds 0; no error)'; Expect = @(); Act = { param($F) Connect-IpcSocket -Port $F.Server.Port -TimeoutSeconds 0 } }
        )
        'Get-IpcSocketServer'   = @(
            @{ Case = 'an unclosed bracket'; Expect = 'InvalidWildcardPattern'; Act = { param($F) Get-IpcSocketServer -Name '[' } }
            @{ Case = 'a name no server has'; Expect = 'SocketServerNotFound'; Act = { param($F) Get-IpcSocketServer -Name $F.MissingName } }
            @{ Case = 'the name of a pipe (not a socket server)'; Expect = 'SocketServerNotFound'; Act = { param($F) Get-IpcSocketServer -Name $F.Pipe.Name } }
            @{ Case = 'an empty name'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Get-IpcSocketServer -Name '' } }
        )
        'Stop-IpcSocketServer'  = @(
            @{ Case = 'a name nobody opened'; Expect = 'ParameterArgumentTransformationError'; Act = { param($F) Stop-IpcSocketServer -Server $F.MissingName } }
            @{ Case = 'a pipe (another kind of channel)'; Expect = 'CannotConvertArgumentNoMessage'; Act = { param($F) Stop-IpcSocketServer -Server $F.Pipe } }
            @{ Case = 'the name of a pipe'; Expect = 'CannotConvertArgumentNoMessage'; Act = { param($F) Stop-IpcSocketServer -Server $F.Pipe.Name } }
            @{ Case = 'a server stopped already (no error)'; Expect = @(); Act = { param($F) Stop-IpcSocketServer -Server $F.StoppedServer } }
            @{ Case = '-TimeoutSeconds -1'; Expect = 'ParameterArgumentValidationError'; Act = { param($F) Stop-IpcSocketServer -Server $F.StoppedServer -TimeoutSeconds -1 } }
        )
    }

    $CmdletCases = foreach ($name in $Exported) { @{ Name = $name; Cases = @($Cases[$name] | Where-Object { $_ }) } }
    $UnknownCmdlets = @($Cases.Keys | Where-Object { $_ -notin $Exported })
}

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    function Get-CallArgument {
        # The text of argument number $Index (0-based) of the C# call whose '(' is at $Open: commas inside
        # nested brackets, string literals and character literals do not split arguments.
        param([string] $Text, [int] $Open, [int] $Index)
        $depth = 0; $number = 0; $begin = $Open + 1
        for ($i = $Open + 1; $i -lt $Text.Length; $i++) {
            $c = $Text[$i]
            if ($c -eq '"') {
                $verbatim = $Text[$i - 1] -eq '@' -or ($Text[$i - 1] -eq '$' -and $Text[$i - 2] -eq '@')
                for ($i++; $i -lt $Text.Length; $i++) {
                    if (-not $verbatim -and $Text[$i] -eq '\') { $i++; continue }
                    if ($Text[$i] -eq '"') {
                        if ($verbatim -and $i + 1 -lt $Text.Length -and $Text[$i + 1] -eq '"') { $i++; continue }
                        break
                    }
                }
            }
            elseif ($c -eq "'") {
                for ($i++; $i -lt $Text.Length -and $Text[$i] -ne "'"; $i++) { if ($Text[$i] -eq '\') { $i++ } }
            }
            elseif ($c -in '(', '[', '{') { $depth++ }
            elseif ($c -in ')', ']', '}') {
                if ($depth -eq 0) { return $(if ($number -eq $Index) { $Text.Substring($begin, $i - $begin) }) }
                $depth--
            }
            elseif ($c -eq ',' -and $depth -eq 0) {
                if ($number -eq $Index) { return $Text.Substring($begin, $i - $begin) }
                $number++
                $begin = $i + 1
            }
        }
    }

    # The module's own ids: the transport's failure kinds, and the string ids its C# gives ErrorRecords: the
    # literals of the second argument of new ErrorRecord(...) and ErrorMapping.ToErrorRecord(...), a
    # ternary's two included.
    $script:KindIds = [enum]::GetNames([PsIpc.Transport.IpcErrorKind])
    $script:SourceIds = @(
        $source = Join-Path $RepoRoot 'src/PsIpc'
        $files = Get-ChildItem -Path $source -Filter *.cs -Recurse -File |
            Where-Object { [System.IO.Path]::GetRelativePath($source, $_.FullName) -notmatch '^(bin|obj)[\\/]' }
        foreach ($file in $files) {
            $text = [string](Get-Content -LiteralPath $file.FullName -Raw)
            foreach ($call in [regex]::Matches($text, '(?:new\s+ErrorRecord|ToErrorRecord)\(')) {
                $argument = Get-CallArgument -Text $text -Open ($call.Index + $call.Length - 1) -Index 1
                if (-not $argument) { continue }
                foreach ($literal in [regex]::Matches($argument, '"([A-Z][A-Za-z]+)"')) { $literal.Groups[1].Value }
            }
        }
    ) | Sort-Object -Unique
    # PowerShell's parameter binder reports these before any PsIpc code runs.
    $script:BindingIds = @(
        'ParameterArgumentValidationError', 'ParameterArgumentValidationErrorNullNotAllowed',
        'ParameterArgumentValidationErrorEmptyStringNotAllowed', 'ParameterArgumentTransformationError',
        'ParameterBindingFailed', 'NamedParameterNotFound', 'PositionalParameterNotFound', 'MissingArgument',
        'MissingMandatoryParameter', 'AmbiguousParameter', 'AmbiguousParameterSet', 'ParameterAlreadyBound',
        'CannotConvertArgument', 'CannotConvertArgumentNoMessage', 'InputObjectNotBound'
    )
    $script:AllowedIds = @($KindIds) + @($SourceIds) + @($BindingIds)

    function Invoke-BadInput {
        # Runs a case and returns every error it reported: non-terminating ones (2>&1), statement-terminating
        # ones (they go to the error stream too) and script-terminating ones (-ErrorAction Stop, caught).
        # Channels a case opened by mistake are closed.
        param([scriptblock] $Act, [hashtable] $Fixtures)
        $ErrorActionPreference = 'Continue'
        $records = [System.Collections.Generic.List[System.Management.Automation.ErrorRecord]]::new()
        try {
            & $Act $Fixtures 2>&1 | ForEach-Object {
                if ($_ -is [System.Management.Automation.ErrorRecord]) { $records.Add($_) }
                elseif ($_ -is [PsIpc.Transport.Channels.IpcChannel] -and $Fixtures.Values -notcontains $_) { $_.Dispose() }
            }
        }
        catch { $records.Add($_) }
        , $records.ToArray()
    }

    $script:Dir = Join-Path ([System.IO.Path]::GetTempPath()) "psipc-errorids-$PID"
    $null = New-Item -ItemType Directory -Force -Path $Dir
    $file = Join-Path $Dir 'a-file'
    Set-Content -LiteralPath $file -Value 'not a socket'
    $secretText = [Convert]::ToBase64String([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(32))
    $secret = ConvertTo-SecureString $secretText -AsPlainText -Force

    $closedPipe = New-IpcPipe -Name (New-TestPipeName)
    Close-IpcChannel $closedPipe
    $stoppedServer = Start-IpcSocketServer
    Stop-IpcSocketServer $stoppedServer
    $closedUdp = Start-IpcSocketServer -Udp
    $closedUdpPort = $closedUdp.Port
    Stop-IpcSocketServer $closedUdp
    $server = Start-IpcSocketServer
    $closedClient = Connect-IpcSocket -Port $server.Port -TimeoutSeconds 10
    Close-IpcChannel $closedClient
    $closedSegment = New-SharedMemory -Name (New-TestShmName) -Size 1KB
    Close-IpcChannel $closedSegment

    $script:F = @{
        Dir           = $Dir
        File          = $file
        MissingName   = 'psipc-none-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
        Pipe          = New-IpcPipe -Name (New-TestPipeName)
        ClosedPipe    = $closedPipe
        Server        = $server
        ClosedClient  = $closedClient
        StoppedServer = $stoppedServer
        UnixServer    = Start-IpcSocketServer -Path (Join-Path $Dir 'live.sock')
        UdpServer     = Start-IpcSocketServer -Udp
        ClosedUdpPort = $closedUdpPort
        Secret        = $secret
        WrongSecret   = ConvertTo-SecureString "not $secretText" -AsPlainText -Force
        ShortSecret   = ConvertTo-SecureString 'x' -AsPlainText -Force
        SecretServer  = Start-IpcSocketServer -Secret $secret
        Segment       = New-SharedMemory -Name (New-TestShmName) -Size 1KB
        ClosedSegment = $closedSegment
        Queue         = New-SharedMemory -Name (New-TestShmName) -Size 1KB -Queue
    }
}

AfterAll {
    Clear-TestState
    Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -Confirm:$false -ErrorAction SilentlyContinue
    if ($Dir) { Remove-Item -LiteralPath $Dir -Recurse -Force -ErrorAction SilentlyContinue }
}

Describe 'Error ids: the sweep itself' {
    It 'reads the module''s own string ids from the source' {
        foreach ($id in 'EncodeFailed', 'DecodeFailed', 'ChannelNotFound', 'SocketServerNotFound', 'InvalidAddress',
            'EmptySecret', 'SecretTooShort', 'CertificateWithoutPrivateKey', 'InvalidWildcardPattern') {
            $SourceIds | Should -Contain $id
        }
    }

    It 'has cases only for cmdlets the manifest exports' {
        $UnknownCmdlets | Should -BeNullOrEmpty
    }
}

Describe 'Error ids of <Name>' -ForEach $CmdletCases {
    BeforeAll {
        $implementing = (Get-Command -Name $Name -Module PsIpc).ImplementingType.FullName
    }

    It 'is swept with several bad inputs' {
        $Cases.Count | Should -BeGreaterOrEqual 4
    }

    It '<Case>' -ForEach $Cases {
        $records = Invoke-BadInput -Act $Act -Fixtures $F
        $ids = @($records | ForEach-Object FullyQualifiedErrorId)
        foreach ($id in $ids) {
            $id.Split(',')[0] | Should -BeIn $AllowedIds -Because "'$id' should carry a PsIpc error id ($($records[$ids.IndexOf($id)].Exception.Message))"
        }
        $expected = @($Expect | ForEach-Object { if ($_ -match ',') { $_ } else { "$_,$implementing" } })
        $ids -join ' | ' | Should -Be ($expected -join ' | ')
    }
}
