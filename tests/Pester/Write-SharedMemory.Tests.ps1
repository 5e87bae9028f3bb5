<#
    Write-SharedMemory and Read-SharedMemory: values in every format, bytes at an offset, the limits, the
    lock timeout, and a queue used with the segment cmdlets (and the reverse), each with its exact error id.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

}

Describe 'Write-SharedMemory -Depth' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    BeforeEach {
        $shm = New-SharedMemory -Name (New-TestShmName) -Size 1MB
        $dir = Get-Item -LiteralPath $TestDrive
    }

    It 'warns when the depth cuts the value, naming the property that is read back as text' {
        Write-SharedMemory $shm -InputObject ([pscustomobject]@{ Id = 1; Dir = $dir }) -Depth 1 -WarningVariable warnings -WarningAction SilentlyContinue

        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -Match "cut at -Depth 1: 'Dir\.[\w.]+'"
        $cutPath = ([regex]::Match($warnings[0].Message, "'(Dir\.[\w.]+)'")).Groups[1].Value
        $value = Read-SharedMemory $shm
        foreach ($step in $cutPath.Split('.')) { $value = $value.$step }
        $value | Should -BeOfType [string] -Because "the warning announced that $cutPath is published as text"
    }

    It 'warns for pipeline items published together as one array' {
        1..3 | ForEach-Object { [pscustomobject]@{ Id = $_; Dir = $dir } } |
            Write-SharedMemory $shm -Depth 1 -WarningVariable warnings -WarningAction SilentlyContinue

        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -Match "'\[0\]\.Dir\.[\w.]+'"
        (Read-SharedMemory $shm).Count | Should -Be 3
    }

    It 'says nothing when everything fits' {
        $value = [pscustomobject]@{ Id = 1; Inner = [pscustomobject]@{ Leaf = [pscustomobject]@{ X = 1 } }; Map = @{ k = @{ k2 = 2 } } }
        # Records nest without limit: PSSerializer spends depth only on .NET objects' properties.
        Write-SharedMemory $shm -InputObject $value -Depth 1 -WarningVariable warnings -WarningAction SilentlyContinue

        $warnings.Count | Should -Be 0
        $read = Read-SharedMemory $shm
        $read.Inner.Leaf.X | Should -Be 1
        $read.Map.k.k2 | Should -Be 2
    }
}

Describe 'Write-SharedMemory and Read-SharedMemory' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    BeforeEach {
        $shm = New-SharedMemory -Name (New-TestShmName) -Size 64KB
    }

    It 'returns nothing before the first write' {
        Read-SharedMemory $shm | Should -BeNullOrEmpty
    }

    It 'round-trips a string, bytes, an object and JSON' {
        Write-SharedMemory $shm -InputObject 'héllo'
        Read-SharedMemory $shm | Should -BeExactly 'héllo'

        Write-SharedMemory $shm -InputObject ([byte[]](1, 2, 3))
        $bytes = Read-SharedMemory $shm
        , $bytes | Should -BeOfType [byte[]]
        $bytes | Should -Be @(1, 2, 3)

        Write-SharedMemory $shm -InputObject ([pscustomobject]@{ Name = 'x'; N = 42 })
        $o = Read-SharedMemory $shm
        $o.N | Should -Be 42
        $o.PSObject.TypeNames[0] | Should -Be 'Deserialized.System.Management.Automation.PSCustomObject'

        Write-SharedMemory $shm -InputObject @{ a = 1 } -Format Json
        (Read-SharedMemory $shm).a | Should -Be 1
    }

    It 'publishes everything piped to one command as one value' {
        1..5 | Write-SharedMemory $shm
        Read-SharedMemory $shm | Should -Be (1..5)
        'only' | Write-SharedMemory $shm
        Read-SharedMemory $shm | Should -BeExactly 'only'
    }

    It 'takes the name of an open segment' {
        Write-SharedMemory $shm.Name -InputObject 'by name'
        Read-SharedMemory $shm.Name | Should -BeExactly 'by name'
    }

    It 'writes and reads bytes at an offset, up to the last byte' {
        Write-SharedMemory $shm -Bytes ([byte[]](7, 8, 9)) -Offset (64KB - 3)
        $bytes = Read-SharedMemory $shm -Offset (64KB - 4) -Count 4
        , $bytes | Should -BeOfType [byte[]]
        $bytes | Should -Be @(0, 7, 8, 9)
        , (Read-SharedMemory $shm -Offset 64KB -Count 0) | Should -BeOfType [byte[]]
    }

    It 'refuses a value or bytes beyond the segment with SharedMemoryTooLarge and keeps the old value' {
        Write-SharedMemory $shm -InputObject 'old'
        { Write-SharedMemory $shm -InputObject ([byte[]]::new(64KB + 1)) } | Should -Throw -ErrorId 'SharedMemoryTooLarge,PsIpc.Commands.WriteSharedMemoryCommand'
        { Write-SharedMemory $shm -Bytes ([byte[]](1, 2)) -Offset (64KB - 1) } | Should -Throw -ErrorId 'SharedMemoryTooLarge,PsIpc.Commands.WriteSharedMemoryCommand'
        { Read-SharedMemory $shm -Offset 1 -Count 64KB } | Should -Throw -ErrorId 'SharedMemoryTooLarge,PsIpc.Commands.ReadSharedMemoryCommand'
        Read-SharedMemory $shm | Should -BeExactly 'old'
    }

    It 'times out on a lock another process holds, with SharedMemoryLockTimeout (non-terminating)' {
        # Python holds the lock as docs/protocol.md describes it: its pid in the lock word.
        $py = Start-PythonPeer -Code @'
import mmap, os, struct
f = open(sys.argv[1], 'r+b')
m = mmap.mmap(f.fileno(), 0)
m[40:44] = struct.pack('<i', os.getpid())
say('holding')
hang()
'@ -ArgumentList $shm.Address
        Read-PeerLine $py | Should -Be 'holding'
        Read-SharedMemory $shm -TimeoutSeconds 0.3 -ErrorAction SilentlyContinue -ErrorVariable err | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'SharedMemoryLockTimeout,PsIpc.Commands.ReadSharedMemoryCommand'
        $err[0].CategoryInfo.Category | Should -Be 'OperationTimeout'
        $err[0].Exception.Message | Should -Match "held by process $($py.Id)"
        Write-SharedMemory $shm -InputObject 'x' -TimeoutSeconds 0 -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -Be 'SharedMemoryLockTimeout,PsIpc.Commands.WriteSharedMemoryCommand'
    }
}

Describe 'Segments and queues are not interchangeable' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'refuses a queue in Read-/Write-SharedMemory with SharedMemoryIsQueue' {
        $q = New-SharedMemory -Name (New-TestShmName) -Size 4KB -Queue
        { Read-SharedMemory $q } | Should -Throw -ErrorId 'SharedMemoryIsQueue,PsIpc.Commands.ReadSharedMemoryCommand'
        { Write-SharedMemory $q -InputObject 'x' } | Should -Throw -ErrorId 'SharedMemoryIsQueue,PsIpc.Commands.WriteSharedMemoryCommand'
    }

    It 'refuses a segment in Send-/Receive-IpcMessage with SharedMemoryNotQueue' {
        $s = New-SharedMemory -Name (New-TestShmName) -Size 4KB
        { Send-IpcMessage $s -InputObject 'x' } | Should -Throw -ErrorId 'SharedMemoryNotQueue,PsIpc.Commands.SendIpcMessageCommand'
        { Receive-IpcMessage $s -TimeoutSeconds 1 } | Should -Throw -ErrorId 'SharedMemoryNotQueue,PsIpc.Commands.ReceiveIpcMessageCommand'
    }
}

Describe 'A queue with Send-IpcMessage and Receive-IpcMessage' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'keeps order and formats, takes -Count and leaves the rest' {
        $q = New-SharedMemory -Name (New-TestShmName) -Size 64KB -Queue
        'text', ([byte[]](1, 2)), 42, @{ k = 'v' } | Send-IpcMessage $q
        $first = Receive-IpcMessage $q -Count 2
        $first[0] | Should -BeExactly 'text'
        , $first[1] | Should -BeOfType [byte[]]
        $rest = Receive-IpcMessage $q -Count 2 -Envelope
        $rest[0].Body | Should -Be 42
        $rest[1].Body.k | Should -Be 'v'
        $rest[1].Format | Should -Be 'CliXml'
        $q.Count | Should -Be 0
    }

    It 'times out an empty queue with ReceiveTimeout and a full one with SendTimeout, dropping nothing' {
        $q = New-SharedMemory -Name (New-TestShmName) -Size 64 -Queue
        Receive-IpcMessage $q -TimeoutSeconds 0.2 -ErrorAction SilentlyContinue -ErrorVariable err | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'ReceiveTimeout,PsIpc.Commands.ReceiveIpcMessageCommand'
        ('a' * 16), ('b' * 16), ('c' * 16) | Send-IpcMessage $q -TimeoutSeconds 0.2 -ErrorAction SilentlyContinue -ErrorVariable err2
        $err2[0].FullyQualifiedErrorId | Should -Be 'SendTimeout,PsIpc.Commands.SendIpcMessageCommand'
        Receive-IpcMessage $q -TimeoutSeconds 0 -ErrorAction SilentlyContinue | Should -Be @(('a' * 16), ('b' * 16))
    }

    It 'refuses a message larger than the queue with MessageTooLarge' {
        $q = New-SharedMemory -Name (New-TestShmName) -Size 128 -Queue
        { Send-IpcMessage $q -InputObject ([byte[]]::new(121)) } | Should -Throw -ErrorId 'MessageTooLarge,PsIpc.Commands.SendIpcMessageCommand'
    }
}
