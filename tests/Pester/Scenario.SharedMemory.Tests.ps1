<#
    Shared memory across real processes: two pwsh sharing a segment, a reader that checks every value a
    busy writer publishes (no torn reads), a queue with 3 producers and 2 consumers in 5 processes, and
    kill -9 of a process that holds the lock.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

}

Describe 'Two processes share a segment' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'reads in one process what the other wrote, both ways, and outlives its creator' {
        $name = New-TestShmName
        $r = Invoke-PwshChild {
            param($Name)
            $s = New-SharedMemory -Name $Name -Size 1MB
            Write-SharedMemory $s -InputObject @{ Stage = 'compile'; Percent = 40 }
        } -ArgumentList $name
        $r.ExitCode | Should -Be 0 -Because $r.Error

        $view = New-SharedMemory -Name $name -Open
        $status = Read-SharedMemory $view
        $status.Stage | Should -Be 'compile'
        $status.Percent | Should -Be 40
        Write-SharedMemory $view -InputObject 'reply from the parent'

        $r = Invoke-PwshChild { param($Name) Read-SharedMemory (New-SharedMemory -Name $Name -Open) } -ArgumentList $name
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $r.Output | Should -Be 'reply from the parent'
    }

    It 'never lets a reader see half of an update (a writer publishing checksummed values in a loop)' {
        $name = New-TestShmName
        $shm = New-SharedMemory -Name $name -Size 1MB
        # Each value is one 6-digit number repeated a varying number of times: a mix of two values shows.
        $writer = Start-TestPwshChild {
            param($Name)
            $s = New-SharedMemory -Name $Name -Open
            'ready'
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $i = 0
            while ($sw.Elapsed.TotalSeconds -lt 3) {
                $i++
                Write-SharedMemory $s -InputObject (('{0:D6}' -f $i) * (1000 + ($i * 37) % 9000))
            }
            "writes $i"
        } -ArgumentList $name
        Read-PeerLine $writer | Should -Be 'ready'
        $reads = 0; $torn = 0; $distinct = [Collections.Generic.HashSet[string]]::new()
        while (-not $writer.HasExited) {
            $v = Read-SharedMemory $shm
            if ($null -eq $v) { continue }
            $reads++
            $chunk = $v.Substring(0, 6)
            if ($v.Length % 6 -ne 0 -or -not ($v -ceq ($chunk * ($v.Length / 6)))) { $torn++ }
            $null = $distinct.Add($chunk)
        }
        $r = Wait-PwshChild $writer
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $torn | Should -Be 0
        $reads | Should -BeGreaterThan 20
        $distinct.Count | Should -BeGreaterThan 5 -Because 'the reader must have seen the value change while it read'
    }
}

Describe 'A queue shared by 3 producers and 2 consumers' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'moves 300000 messages with none lost or duplicated, each producer''s in order' {
        # A 64 KiB ring holds about 2700 of these messages: it fills and empties over and over, so producers
        # block on a full ring and consumers on an empty one, across 5 processes.
        $name = New-TestShmName
        $perProducer = 100000
        $queue = New-SharedMemory -Name $name -Size 64KB -Queue
        $consumers = 1..2 | ForEach-Object {
            Start-TestPwshChild {
                param($Name)
                $q = New-SharedMemory -Name $Name -Open
                $got = [Collections.Generic.List[string]]::new()
                # Streams batches until its END: Select-Object -First 1 stops Receive-IpcMessage there, which puts
                # the rest of its batch (the other consumer's END, and anything after) back into the ring.
                $end = Receive-IpcMessage $q -TimeoutSeconds 120 |
                    ForEach-Object { if ($_ -ceq 'END') { $_ } else { $got.Add($_) } } |
                    Select-Object -First 1
                if ($end -cne 'END') { throw "no END: the stream ended after $($got.Count) messages" }
                # One string: nobody reads this process's output until it ends, and a full pipe would block it.
                [string]::Join("`n", $got)
            } -ArgumentList $name
        }
        $producers = 1..3 | ForEach-Object {
            Start-TestPwshChild {
                param($Name, $Id, $Count)
                $q = New-SharedMemory -Name $Name -Open
                $messages = [string[]]::new($Count)
                for ($i = 0; $i -lt $Count; $i++) { $messages[$i] = "$Id-$i" }
                $messages | Send-IpcMessage $q -TimeoutSeconds 120
            } -ArgumentList $name, $_, $perProducer
        }
        foreach ($p in $producers) {
            $r = Wait-PwshChild $p -TimeoutSeconds 180
            $r.ExitCode | Should -Be 0 -Because $r.Error
        }
        'END', 'END' | Send-IpcMessage $queue
        $seen = [Collections.Generic.HashSet[string]]::new()
        $total = 0
        foreach ($c in $consumers) {
            $r = Wait-PwshChild $c -TimeoutSeconds 180
            $r.ExitCode | Should -Be 0 -Because $r.Error
            # Each producer's messages keep their order in what one consumer received.
            $last = @{ '1' = -1; '2' = -1; '3' = -1 }
            $outOfOrder = 0
            foreach ($m in $r.Output) {
                if ($m.Length -eq 0) { continue }
                $total++
                $null = $seen.Add($m)
                $id, $n = $m.Split('-')
                if ([int]$n -le $last[$id]) { $outOfOrder++ }
                $last[$id] = [int]$n
            }
            $outOfOrder | Should -Be 0
        }
        $total | Should -Be (3 * $perProducer)
        $seen.Count | Should -Be (3 * $perProducer) -Because 'no message may arrive twice'
        $queue.Count | Should -Be 0
    }
}

Describe 'A receiver stopped mid-batch' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'leaves what it took but did not deliver in the queue, for another process' {
        $name = New-TestShmName
        $queue = New-SharedMemory -Name $name -Size 64KB -Queue
        1..10 | Send-IpcMessage $queue
        # Receive-IpcMessage takes all 10 under one lock; Select-Object stops it after 3.
        $first = Receive-IpcMessage $queue | Select-Object -First 3
        $first | Should -Be 1, 2, 3
        $queue.Count | Should -Be 7
        Close-IpcChannel $queue

        $r = Invoke-PwshChild {
            param($Name)
            $q = New-SharedMemory -Name $Name -Open
            (Receive-IpcMessage $q -Count 7 -TimeoutSeconds 10) -join ','
        } -ArgumentList $name
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $r.Output | Should -Be '4,5,6,7,8,9,10'
    }
}

Describe 'kill -9 of a process that holds the lock' {
    AfterEach {
        Clear-TestState
        Get-SharedMemory -Name "$TestShmPrefix*" | Remove-SharedMemory -ErrorAction SilentlyContinue
    }

    It 'is recovered: a half-done write is reported as SharedMemoryDamaged, then repaired by a new value' {
        $shm = New-SharedMemory -Name (New-TestShmName) -Size 64KB
        Write-SharedMemory $shm -InputObject 'before'
        # A writer in the middle of a write: it holds the lock (its pid in the lock word) and the write
        # sequence is odd, exactly what a PsIpc process killed there leaves (docs/protocol.md).
        $py = Start-PythonPeer -Code @'
import mmap, os, struct
f = open(sys.argv[1], 'r+b')
m = mmap.mmap(f.fileno(), 0)
m[40:44] = struct.pack('<i', os.getpid())
seq = struct.unpack('<Q', m[64:72])[0]
m[64:72] = struct.pack('<Q', seq + 1)
m[128:131] = b'XYZ'
say('writing')
hang()
'@ -ArgumentList $shm.Address
        Read-PeerLine $py | Should -Be 'writing'
        Read-SharedMemory $shm -TimeoutSeconds 0.2 -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -Be 'SharedMemoryLockTimeout,PsIpc.Commands.ReadSharedMemoryCommand'

        Stop-TestProcess $py
        { Read-SharedMemory $shm -TimeoutSeconds 10 } | Should -Throw -ErrorId 'SharedMemoryDamaged,PsIpc.Commands.ReadSharedMemoryCommand'
        $shm.LockRecoveries | Should -Be 1
        (Get-SharedMemory -Name $shm.Name).Status | Should -Be 'Damaged'
        Write-SharedMemory $shm -InputObject 'after' -TimeoutSeconds 10
        Read-SharedMemory $shm | Should -BeExactly 'after'
        (Get-SharedMemory -Name $shm.Name).Status | Should -Be 'Ok'
    }

    It 'never deadlocks the others when a pwsh writer is killed at a random point of its writes' {
        $name = New-TestShmName
        $shm = New-SharedMemory -Name $name -Size 8MB
        $writer = Start-TestPwshChild {
            param($Name)
            $s = New-SharedMemory -Name $Name -Open
            $big = [byte[]]::new(8MB)
            'ready'
            while ($true) { Write-SharedMemory $s -InputObject $big }
        } -ArgumentList $name
        Read-PeerLine $writer | Should -Be 'ready'
        Start-Sleep -Milliseconds (Get-Random -Minimum 100 -Maximum 400)
        Stop-TestProcess $writer
        # Whatever the moment: the lock is free or taken over; the value is whole or reported damaged.
        try {
            $v = Read-SharedMemory $shm -TimeoutSeconds 10
            , $v | Should -BeOfType [byte[]]
            $v.Length | Should -Be 8MB
        }
        catch {
            $_.FullyQualifiedErrorId | Should -Be 'SharedMemoryDamaged,PsIpc.Commands.ReadSharedMemoryCommand'
        }
        Write-SharedMemory $shm -InputObject 'alive' -TimeoutSeconds 10
        Read-SharedMemory $shm -TimeoutSeconds 10 | Should -BeExactly 'alive'
    }

    It 'leaves a queue usable when a producer is killed while it sends' {
        $name = New-TestShmName
        $queue = New-SharedMemory -Name $name -Size 4KB -Queue
        $producer = Start-TestPwshChild {
            param($Name)
            $q = New-SharedMemory -Name $Name -Open
            'ready'
            1..1000000 | ForEach-Object { "m$_" } | Send-IpcMessage $q
        } -ArgumentList $name
        Read-PeerLine $producer | Should -Be 'ready'
        $first = Receive-IpcMessage $queue -Count 50 -TimeoutSeconds 30
        Stop-TestProcess $producer
        $rest = Receive-IpcMessage $queue -TimeoutSeconds 1 -ErrorAction SilentlyContinue
        $all = @($first) + @($rest)
        $all[0] | Should -Be 'm1'
        # In order, none missing, none duplicated, up to where the producer died.
        for ($i = 0; $i -lt $all.Count; $i++) { $all[$i] | Should -Be "m$($i + 1)" }
        'after' | Send-IpcMessage $queue -TimeoutSeconds 10
        Receive-IpcMessage $queue -Count 1 -TimeoutSeconds 10 | Should -Be 'after'
    }
}
