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
