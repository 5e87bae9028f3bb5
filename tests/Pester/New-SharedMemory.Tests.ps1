<#
    New-SharedMemory, Get-SharedMemory and Remove-SharedMemory: creating, opening, listing and deleting
    segments, and the exact error ids of bad input (name taken, name missing, a file of someone else or
    not a segment at all).
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1


    $script:ShmDirectory = if (Test-Path /dev/shm) { "/dev/shm/psipc-$(id -u)" } else { Join-Path ([IO.Path]::GetTempPath()) "psipc-$(id -u)" }
}

Describe 'New-SharedMemory' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'creates a 0600 file of the size plus the 128-byte header, and a channel that Get-IpcChannel lists' {
        $name = New-TestShmName
        $shm = New-SharedMemory -Name $name -Size 4KB
        $shm.Name | Should -BeExactly $name
        $shm.Capacity | Should -Be 4096
        $shm.Kind | Should -Be 'Memory'
        $shm.Role | Should -Be 'Server'
        $shm.Address | Should -Be (Join-Path $ShmDirectory $name)
        (Get-Item -LiteralPath $shm.Address).Length | Should -Be (4096 + 128)
        [int](Get-Item -LiteralPath $shm.Address).UnixFileMode | Should -Be 384 -Because 'mode 0600'
        [int](Get-Item -LiteralPath $ShmDirectory).UnixFileMode | Should -Be 448 -Because 'mode 0700'
        (Get-IpcChannel -Name $name).Address | Should -Be $shm.Address
    }

    It 'creates a queue with -Queue and opens either kind with -Open' {
        $q = New-TestShmName; $s = New-TestShmName
        $null = New-SharedMemory -Name $q -Size 1000 -Queue
        $null = New-SharedMemory -Name $s -Size 1000
        $openQ = New-SharedMemory -Name $q -Open
        $openS = New-SharedMemory -Name $s -Open
        $openQ | Should -BeOfType PsIpc.Transport.SharedMemory.SharedMemoryQueue
        $openS | Should -BeOfType PsIpc.Transport.SharedMemory.SharedMemorySegment
        $openQ.Role | Should -Be 'Client'
    }

    It 'refuses a taken name with SharedMemoryNameInUse' {
        $name = New-TestShmName
        $null = New-SharedMemory -Name $name -Size 4KB
        { New-SharedMemory -Name $name -Size 4KB -Queue } | Should -Throw -ErrorId 'SharedMemoryNameInUse,PsIpc.Commands.NewSharedMemoryCommand'
    }

    It 'refuses to open a missing name with SharedMemoryNotFound' {
        { New-SharedMemory -Name (New-TestShmName) -Open } | Should -Throw -ErrorId 'SharedMemoryNotFound,PsIpc.Commands.NewSharedMemoryCommand'
    }

    It 'refuses the invalid name <Name> with InvalidSharedMemoryName' -ForEach @(
        @{ Name = '.hidden' }, @{ Name = 'a/b' }, @{ Name = 'sp ace' }, @{ Name = 'x' * 101 }
    ) {
        { New-SharedMemory -Name $Name -Size 4KB } | Should -Throw -ErrorId 'InvalidSharedMemoryName,PsIpc.Commands.NewSharedMemoryCommand'
    }

    It 'refuses a size out of range at parameter binding' {
        { New-SharedMemory -Name (New-TestShmName) -Size 10 } | Should -Throw -ErrorId 'ParameterArgumentValidationError,PsIpc.Commands.NewSharedMemoryCommand'
    }

    It 'refuses a segment of another user, or with another mode, with AccessDenied' {
        $name = New-TestShmName
        $shm = New-SharedMemory -Name $name -Size 4KB
        Close-IpcChannel $shm
        chmod 0644 $shm.Address
        $e = { New-SharedMemory -Name $name -Open } | Should -Throw -ErrorId 'AccessDenied,PsIpc.Commands.NewSharedMemoryCommand' -PassThru
        $e.Exception.Message | Should -Match 'mode 644'
        chmod 0600 $shm.Address
        if ((id -u) -eq '0') {
            chown 65534 $shm.Address   # root can give the file away: "created by someone else"
            $e = { New-SharedMemory -Name $name -Open } | Should -Throw -ErrorId 'AccessDenied,PsIpc.Commands.NewSharedMemoryCommand' -PassThru
            $e.Exception.Message | Should -Match 'belongs to uid 65534'
        }
    }

    It 'refuses a file that is not a segment with SharedMemoryCorrupt, and never follows a symlink' {
        $null = New-SharedMemory -Name (New-TestShmName) -Size 4KB   # makes sure the directory exists
        $name = New-TestShmName
        $path = Join-Path $ShmDirectory $name
        [IO.File]::WriteAllBytes($path, [byte[]](1..255))
        chmod 0600 $path
        $e = { New-SharedMemory -Name $name -Open } | Should -Throw -ErrorId 'SharedMemoryCorrupt,PsIpc.Commands.NewSharedMemoryCommand' -PassThru
        $e.Exception.Message | Should -Match 'magic'
        (Get-SharedMemory -Name $name).Status | Should -Match 'magic'

        $link = New-TestShmName
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $ShmDirectory $link) -Target $path
        { New-SharedMemory -Name $link -Open } | Should -Throw -ErrorId 'AccessDenied,PsIpc.Commands.NewSharedMemoryCommand'
    }

    It 'creates nothing under -WhatIf' {
        $name = New-TestShmName
        New-SharedMemory -Name $name -Size 4KB -WhatIf | Should -BeNullOrEmpty
        Get-SharedMemory -Name $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}

Describe 'Get-SharedMemory' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'lists segments of every process of the user, with their kind and fill' {
        $s = New-TestShmName; $q = New-TestShmName
        $r = Invoke-PwshChild {
            param($S, $Q)
            $seg = New-SharedMemory -Name $S -Size 4KB
            Write-SharedMemory $seg -InputObject 'hello'
            $queue = New-SharedMemory -Name $Q -Size 4KB -Queue
            'a', 'b' | Send-IpcMessage $queue
        } -ArgumentList $s, $q
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $seg = Get-SharedMemory -Name $s
        $seg.Kind | Should -Be 'Segment'
        $seg.Used | Should -Be 5
        $seg.Status | Should -Be 'Ok'
        $queue = Get-SharedMemory -Name $q
        $queue.Kind | Should -Be 'Queue'
        $queue.Messages | Should -Be 2
        (Get-SharedMemory -Name "$TestShmPrefix*").Name | Should -Contain $q
    }

    It 'writes SharedMemoryNotFound for a missing name without wildcards' {
        Get-SharedMemory -Name (New-TestShmName) -ErrorAction SilentlyContinue -ErrorVariable err | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'SharedMemoryNotFound,PsIpc.Commands.GetSharedMemoryCommand'
        Get-SharedMemory -Name 'shmt-nothing-*' -ErrorVariable err2 | Should -BeNullOrEmpty
        $err2 | Should -BeNullOrEmpty
    }
}

Describe 'Remove-SharedMemory' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'deletes the name; a process that has the segment open keeps using it' {
        $name = New-TestShmName
        $shm = New-SharedMemory -Name $name -Size 4KB
        $other = New-SharedMemory -Name $name -Open
        Remove-SharedMemory -Name $name
        Get-SharedMemory -Name $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Write-SharedMemory $shm -InputObject 'still here'
        Read-SharedMemory $other | Should -Be 'still here'
        { New-SharedMemory -Name $name -Open } | Should -Throw -ErrorId 'SharedMemoryNotFound,PsIpc.Commands.NewSharedMemoryCommand'
        $again = New-SharedMemory -Name $name -Size 4KB   # the name is free again
        Read-SharedMemory $again | Should -BeNullOrEmpty
    }

    It 'closes segment objects it is given, and takes Get-SharedMemory output' {
        $a = New-SharedMemory -Name (New-TestShmName) -Size 4KB
        $b = New-SharedMemory -Name (New-TestShmName) -Size 4KB -Queue
        $a, $b | Remove-SharedMemory
        $a.IsClosed | Should -BeTrue
        $b.IsClosed | Should -BeTrue
        $c = New-SharedMemory -Name (New-TestShmName) -Size 4KB
        Close-IpcChannel $c
        Get-SharedMemory -Name $c.Name | Remove-SharedMemory
        Get-SharedMemory -Name $c.Name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'writes SharedMemoryNotFound for a missing name and goes on with the others' {
        $name = New-TestShmName
        $null = New-SharedMemory -Name $name -Size 4KB
        Remove-SharedMemory -Name (New-TestShmName), $name -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -Be 'SharedMemoryNotFound,PsIpc.Commands.RemoveSharedMemoryCommand'
        Get-SharedMemory -Name $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'removes nothing under -WhatIf' {
        $shm = New-SharedMemory -Name (New-TestShmName) -Size 4KB
        Remove-SharedMemory $shm -WhatIf
        $shm.IsClosed | Should -BeFalse
        Get-SharedMemory -Name $shm.Name | Should -Not -BeNullOrEmpty
    }
}
