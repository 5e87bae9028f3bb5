<#
    Shared memory facing a broken or hostile process of the same machine: a segment or queue file
    truncated while it is mapped (before the fix: SIGBUS, the whole pwsh died with exit code 134).
    Each case runs in a child pwsh, so that a crash shows as that child's exit code instead of
    taking the test run with it.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

Describe 'A segment or queue file truncated while it is mapped' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'gives SharedMemoryTruncated to Read-/Write-SharedMemory and Send-/Receive-IpcMessage, and the process lives on' {
        $r = Invoke-PwshChild {
            param($Segment, $Queue)
            function Step([string] $What, [scriptblock] $Call) {
                try { $null = & $Call; "${What}: no error" } catch { "${What}: $($_.FullyQualifiedErrorId)" }
            }
            function Cut([string] $Path) {
                $fs = [IO.FileStream]::new($Path, 'Open', 'ReadWrite')
                try { $fs.SetLength(0) } finally { $fs.Dispose() }
            }
            $s = New-SharedMemory -Name $Segment -Size 64KB
            Write-SharedMemory $s -InputObject 'before'
            Cut $s.Address
            Step 'read' { Read-SharedMemory $s }
            Step 'write' { Write-SharedMemory $s -InputObject 'after' }
            Step 'bytes' { Read-SharedMemory $s -Offset 60000 -Count 10 }

            $q = New-SharedMemory -Name $Queue -Size 64KB -Queue
            'a', 'b' | Send-IpcMessage $q
            Cut $q.Address
            Step 'receive' { Receive-IpcMessage $q -Count 1 -TimeoutSeconds 5 }
            Step 'send' { 'c' | Send-IpcMessage $q }
            $null = Get-IpcChannel | Format-Table | Out-String   # the table views read the headers too
            'alive'
        } -ArgumentList (New-TestShmName), (New-TestShmName)

        $r.ExitCode | Should -Be 0 -Because "the child must survive; its error output: $($r.Error)"
        $r.Output | Should -Be @(
            'read: SharedMemoryTruncated,PsIpc.Commands.ReadSharedMemoryCommand'
            'write: SharedMemoryTruncated,PsIpc.Commands.WriteSharedMemoryCommand'
            'bytes: SharedMemoryTruncated,PsIpc.Commands.ReadSharedMemoryCommand'
            'receive: SharedMemoryTruncated,PsIpc.Commands.ReceiveIpcMessageCommand'
            'send: SharedMemoryTruncated,PsIpc.Commands.SendIpcMessageCommand'
            'alive'
        )
    }
}

Describe 'A shared memory directory that another user created first' {
    BeforeAll {
        $script:Root = (id -u) -eq '0'
    }

    AfterEach {
        Clear-TestState
    }

    It 'is refused with SharedMemoryDirectoryNotOwned naming that user, and PSIPC_SHM_DIR is the way out' {
        if ($Root) {
            # A real second user squats the directory: nobody creates it in a directory everyone may write to.
            $base = Join-Path $TestDrive 'shared'
            $null = New-Item -ItemType Directory -Path $base
            chmod 1777 $base
            $squatted = Join-Path $base 'squatted'
            if (Get-Command runuser -ErrorAction SilentlyContinue) {
                runuser -u nobody -- mkdir -m 700 $squatted
                $LASTEXITCODE | Should -Be 0
            }
            else {
                # No runuser (util-linux): the same result made by root, a directory that belongs to nobody.
                $null = New-Item -ItemType Directory -Path $squatted
                chmod 700 $squatted
                chown 65534 $squatted
            }
            $owner = 'uid 65534 \(nobody\)'
        }
        else {
            $squatted = '/'   # root's: as good as squatted for anyone else
            $owner = 'uid 0 \(root\)'
        }
        $r = Invoke-PwshChild {
            param($Name)
            Get-SharedMemory -ErrorAction SilentlyContinue -ErrorVariable listed
            $listed[0].FullyQualifiedErrorId
            $listed[0].Exception.Message
            try { $null = New-SharedMemory -Name $Name -Size 4KB; 'created' } catch { $_.FullyQualifiedErrorId }
            try { $null = New-SharedMemory -Name $Name -Open; 'opened' } catch { $_.FullyQualifiedErrorId }
        } -ArgumentList (New-TestShmName) -Environment @{ PSIPC_SHM_DIR = $squatted }
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $r.Output[0] | Should -Be 'SharedMemoryDirectoryNotOwned,PsIpc.Commands.GetSharedMemoryCommand'
        $r.Output[1] | Should -Match "is a directory of $owner"
        $r.Output[1] | Should -Match 'PSIPC_SHM_DIR'
        $r.Output[2] | Should -Be 'SharedMemoryDirectoryNotOwned,PsIpc.Commands.NewSharedMemoryCommand'
        $r.Output[3] | Should -Be 'SharedMemoryDirectoryNotOwned,PsIpc.Commands.NewSharedMemoryCommand'
        $r.Output.Count | Should -Be 4
    }

    It 'is left alone when both ends set PSIPC_SHM_DIR to a directory of their own' {
        $mine = Join-Path $TestDrive 'mine'   # made by the first process, mode 0700
        $name = New-TestShmName
        $r = Invoke-PwshChild {
            param($Name)
            $s = New-SharedMemory -Name $Name -Size 4KB
            Write-SharedMemory $s -InputObject 'through PSIPC_SHM_DIR'
            $s.Address
        } -ArgumentList $name -Environment @{ PSIPC_SHM_DIR = $mine }
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $r.Output | Should -Be (Join-Path $mine $name)
        [int](Get-Item -LiteralPath $mine).UnixFileMode | Should -Be 448 -Because 'mode 0700'

        $r = Invoke-PwshChild {
            param($Name)
            Read-SharedMemory (New-SharedMemory -Name $Name -Open)
            Remove-SharedMemory -Name $Name
        } -ArgumentList $name -Environment @{ PSIPC_SHM_DIR = $mine }
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $r.Output | Should -Be 'through PSIPC_SHM_DIR'
        Get-SharedMemory -Name $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty -Because 'this process uses the default directory'
    }
}
