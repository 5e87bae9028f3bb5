BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

# Found by the soak (soak/Invoke-Soak.ps1): an echo handler answered a byte[] with one message per byte, so a
# client that took as many replies as it sent requests fell behind until back-pressure stalled both ends.
Describe 'A -ScriptBlock handler that replies with a byte array' {
    AfterEach {
        Clear-TestState
    }

    It 'sends a byte[] output as one item (<Output>) as one bytes message, and a plain $message unrolled as PowerShell does' -ForEach @(
        @{ Output = ',$message'; Handler = { param($message) , $message } }
        @{ Output = 'Write-Output -NoEnumerate'; Handler = { param($message) Write-Output -NoEnumerate $message } }
    ) {
        $path = Join-Path ([System.IO.Path]::GetTempPath()) "psipc-hr-$PID-$([guid]::NewGuid().ToString('N').Substring(0, 8)).sock"
        $srv = Start-IpcSocketServer -Path $path -ScriptBlock $Handler
        $c = Connect-IpcSocket -Path $path -TimeoutSeconds 10
        [byte[]] $bytes = 1..200 | ForEach-Object { [byte]$_ }
        $bytes, 'after' | Send-IpcMessage $c   # the pipeline unrolls only the outer array: two messages
        $replies = @(Receive-IpcMessage $c -Count 2 -TimeoutSeconds 10)
        $replies.Count | Should -Be 2
        , $replies[0] | Should -BeOfType ([byte[]])
        $replies[0].Length | Should -Be 200
        $replies[1] | Should -Be 'after'
        Receive-IpcMessage $c -TimeoutSeconds 0 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty   # nothing more: no byte by byte
        $srv.HandlerErrors | Should -Be 0
    }

    It 'still unrolls a plain $message output into one message per byte (PowerShell pipeline semantics)' {
        $path = Join-Path ([System.IO.Path]::GetTempPath()) "psipc-hr-$PID-plain.sock"
        $srv = Start-IpcSocketServer -Path $path -ScriptBlock { param($message) $message }
        $c = Connect-IpcSocket -Path $path -TimeoutSeconds 10
        Send-IpcMessage $c -InputObject ([byte[]](7, 8, 9)) -Format Bytes
        Receive-IpcMessage $c -Count 3 -TimeoutSeconds 10 | Should -Be 7, 8, 9
    }
}
