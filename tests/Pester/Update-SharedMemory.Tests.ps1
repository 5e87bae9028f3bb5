<#
    Update-SharedMemory: read-modify-write under the segment's cross-process lock. Exact totals from eight
    ForEach-Object -Parallel workers and two separate processes; a holder killed with kill -9 in the middle of an
    update; a timeout while another process holds the lock; Ctrl+C; a script block that throws or that reads or
    writes the same segment (re-entry), each with its exact error id.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    function Start-LockHolder {
        # A child that starts an update of the segment and, inside the script block (the lock held), says
        # 'inside' and waits for a line on standard input; then it adds 1 and says 'done'.
        param([string] $Name)
        $child = Start-TestPwshChild {
            param($Name)
            $segment = New-SharedMemory -Name $Name -Open
            Update-SharedMemory $segment {
                param($value)
                [Console]::Out.WriteLine('inside') # not output: the output is the new value
                [Console]::Out.Flush()
                $null = [Console]::In.ReadLine()
                [int]$value + 1
            }
            'done'
        } -ArgumentList $Name -KeepStandardInput
        Read-PeerLine $child -TimeoutSeconds 120 | Should -Be 'inside'
        $child
    }
}

Describe 'Update-SharedMemory' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    Context 'Update-SharedMemory' {
        BeforeEach {
            $shm = New-SharedMemory -Name (New-TestShmName) -Size 64KB
        }

        It 'gives the script block the current value ($null before the first write) and writes its output back' {
            Update-SharedMemory $shm { param($value) $null -eq $value } -PassThru | Should -BeTrue
            Read-SharedMemory $shm | Should -BeTrue

            Write-SharedMemory $shm -InputObject 41
            Update-SharedMemory $shm { $_ + 1 }
            Read-SharedMemory $shm | Should -Be 42
            $shm.LockHolder | Should -Be 0
        }

        It 'writes objects as Write-SharedMemory does, and -Format Json' {
            Update-SharedMemory $shm { [pscustomobject]@{ Count = 1; Names = @('a') } }
            Update-SharedMemory $shm { param($v) [pscustomobject]@{ Count = $v.Count + 1; Names = @($v.Names) + 'b' } } -Format Json
            $read = Read-SharedMemory $shm
            $read.Count | Should -Be 2
            $read.Names | Should -Be 'a', 'b'
        }

        It 'with -PassThru writes the new value to the pipeline; several outputs are one array value' {
            $out = Update-SharedMemory $shm { 1; 2; 3 } -PassThru
            $out | Should -Be 1, 2, 3
            Read-SharedMemory $shm | Should -Be 1, 2, 3
            Update-SharedMemory $shm { 'x' } | Should -BeNullOrEmpty
        }

        It 'leaves the value as it was when the script block writes no output' {
            Write-SharedMemory $shm -InputObject 'kept'
            $before = $shm.WriteCount
            Update-SharedMemory $shm { } -Verbose 4>&1 | ForEach-Object Message | Should -Match 'left as it was'
            Read-SharedMemory $shm | Should -BeExactly 'kept'
            $shm.WriteCount | Should -Be $before
        }

        It 'writes nothing when the script block throws (UpdateScriptFailed), and releases the lock' {
            Write-SharedMemory $shm -InputObject 7
            { Update-SharedMemory $shm { throw 'no change' } } | Should -Throw -ErrorId 'UpdateScriptFailed,PsIpc.Commands.UpdateSharedMemoryCommand'
            { Update-SharedMemory $shm { Write-Error 'stop here' -ErrorAction Stop; 8 } } | Should -Throw -ErrorId 'UpdateScriptFailed,PsIpc.Commands.UpdateSharedMemoryCommand'
            Read-SharedMemory $shm | Should -Be 7
            $shm.LockHolder | Should -Be 0
            Update-SharedMemory $shm { $_ + 1 } -TimeoutSeconds 0
            Read-SharedMemory $shm | Should -Be 8
        }

        It 'refuses to read or write the same segment inside the script block (SharedMemoryLockReentry), instead of waiting for itself' {
            Write-SharedMemory $shm -InputObject 1
            { Update-SharedMemory $shm { Read-SharedMemory $shm } } | Should -Throw -ErrorId 'SharedMemoryLockReentry,PsIpc.Commands.UpdateSharedMemoryCommand'
            { Update-SharedMemory $shm { Write-SharedMemory $shm -InputObject 5; 2 } } | Should -Throw -ErrorId 'SharedMemoryLockReentry,PsIpc.Commands.UpdateSharedMemoryCommand'
            { Update-SharedMemory $shm { Update-SharedMemory $shm { 3 }; 2 } } | Should -Throw -ErrorId 'SharedMemoryLockReentry,PsIpc.Commands.UpdateSharedMemoryCommand'
            Read-SharedMemory $shm | Should -Be 1
            # The same segment opened a second time in this process is the same lock.
            $again = New-SharedMemory -Name $shm.Name -Open
            { Update-SharedMemory $shm { Read-SharedMemory $again } } | Should -Throw -ErrorId 'SharedMemoryLockReentry,PsIpc.Commands.UpdateSharedMemoryCommand'
            # Another segment is fine.
            $other = New-SharedMemory -Name (New-TestShmName) -Size 1KB
            Update-SharedMemory $shm { Write-SharedMemory $other -InputObject 'side'; 2 }
            Read-SharedMemory $other | Should -BeExactly 'side'
            Read-SharedMemory $shm | Should -Be 2
        }

        It 'refuses a queue (SharedMemoryIsQueue)' {
            $queue = New-SharedMemory -Name (New-TestShmName) -Size 1KB -Queue
            { Update-SharedMemory $queue { 1 } } | Should -Throw -ErrorId 'SharedMemoryIsQueue,PsIpc.Commands.UpdateSharedMemoryCommand'
        }

        It 'completes segment names for -SharedMemory, named or by position' {
            $prefix = New-TestShmName
            $one = New-SharedMemory -Name "$prefix-one" -Size 1KB
            $two = New-SharedMemory -Name "$prefix-two" -Size 1KB
            foreach ($line in "Update-SharedMemory -SharedMemory $prefix", "Update-SharedMemory $prefix") {
                $result = TabExpansion2 -inputScript $line -cursorColumn $line.Length
                $result.CompletionMatches.CompletionText | Sort-Object | Should -Be @("$prefix-one", "$prefix-two")
            }
        }

        It 'takes the segment by name and from the pipeline' {
            Update-SharedMemory $shm.Name { 'by name' }
            Read-SharedMemory $shm | Should -BeExactly 'by name'
            $shm | Update-SharedMemory -ScriptBlock { "$_ and pipeline" }
            Read-SharedMemory $shm | Should -BeExactly 'by name and pipeline'
        }
    }

    Context 'Update-SharedMemory across threads and processes' {
        It 'ends with the exact total: eight ForEach-Object -Parallel workers and two processes each adding 1' {
            $name = New-TestShmName
            $shm = New-SharedMemory -Name $name -Size 4KB
            $children = 1..2 | ForEach-Object {
                Start-TestPwshChild {
                    param($Name)
                    $segment = New-SharedMemory -Name $Name -Open
                    1..300 | ForEach-Object { Update-SharedMemory $segment { param($v) [int]$v + 1 } -TimeoutSeconds 120 }
                    'done'
                } -ArgumentList $name
            }
            1..8 | ForEach-Object -ThrottleLimit 8 -Parallel {
                Import-Module $env:PSIPC_MODULE_PATH
                $segment = New-SharedMemory -Name $using:name -Open
                1..200 | ForEach-Object { Update-SharedMemory $segment { param($v) [int]$v + 1 } -TimeoutSeconds 120 }
            }
            foreach ($child in $children) {
                $result = $child | Wait-PwshChild -TimeoutSeconds 600
                $result.ExitCode | Should -Be 0 -Because $result.Error
            }
            Read-SharedMemory $shm | Should -Be (8 * 200 + 2 * 300)
            $shm.WriteCount | Should -Be (8 * 200 + 2 * 300)
        }

        It 'takes over from a holder killed with kill -9 in the middle of an update: the previous value is intact' {
            $shm = New-SharedMemory -Name (New-TestShmName) -Size 4KB
            Write-SharedMemory $shm -InputObject 10
            $holder = Start-LockHolder -Name $shm.Name
            $shm.LockHolder | Should -Be $holder.Id

            Stop-TestProcess $holder
            Update-SharedMemory $shm { $_ + 1 } -TimeoutSeconds 60
            Read-SharedMemory $shm | Should -Be 11
            $shm.LockRecoveries | Should -Be 1
            $shm.IsDamaged | Should -BeFalse -Because 'the dead holder had not started writing'
            $shm.LockHolder | Should -Be 0
        }

        It 'times out while another process holds the lock (SharedMemoryLockTimeout), and works once it is free' {
            $shm = New-SharedMemory -Name (New-TestShmName) -Size 4KB
            Write-SharedMemory $shm -InputObject 1
            $holder = Start-LockHolder -Name $shm.Name

            Update-SharedMemory $shm { 100 } -TimeoutSeconds 0.5 -ErrorVariable failed -ErrorAction SilentlyContinue
            $failed.FullyQualifiedErrorId | Should -Be 'SharedMemoryLockTimeout,PsIpc.Commands.UpdateSharedMemoryCommand'
            $failed.Exception.Message | Should -Match "held by process $($holder.Id)"

            $holder.StandardInput.WriteLine('go')
            Read-PeerLine $holder -TimeoutSeconds 60 | Should -Be 'done'
            Update-SharedMemory $shm { $_ * 10 } -TimeoutSeconds 60
            Read-SharedMemory $shm | Should -Be 20
        }

        It 'stops waiting for the lock at once on Ctrl+C (PowerShell.Stop), writing nothing' {
            $shm = New-SharedMemory -Name (New-TestShmName) -Size 4KB
            Write-SharedMemory $shm -InputObject 1
            $holder = Start-LockHolder -Name $shm.Name

            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript('param($m, $n) Import-Module $m; $s = New-SharedMemory -Name $n -Open; "waiting"; Update-SharedMemory $s { 100 }').
                    AddArgument($env:PSIPC_MODULE_PATH).AddArgument($shm.Name)
                $output = [System.Management.Automation.PSDataCollection[object]]::new()
                $handle = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[object]]::new(), $output)
                Wait-Until { $output.Count -ge 1 } -TimeoutSeconds 60 | Should -BeTrue
                $ps.Stop()
                $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            }
            finally { $ps.Dispose() }
            $holder.StandardInput.WriteLine('go')
            Read-PeerLine $holder -TimeoutSeconds 60 | Should -Be 'done'
            Read-SharedMemory $shm | Should -Be 2 -Because 'the stopped update wrote nothing; the holder added 1'
        }
    }
}
