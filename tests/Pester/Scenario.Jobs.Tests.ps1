BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

# Real processes and jobs: Start-Job (a new pwsh), Start-ThreadJob, ForEach-Object -Parallel,
# Start-Process pwsh, child pwsh processes and python peers killed with kill -9.
Describe 'Scenario: jobs and processes talking through a pipe' {
    BeforeEach {
        $jobs = [System.Collections.Generic.List[object]]::new()
    }

    AfterEach {
        foreach ($job in $jobs) { Remove-Job -Job $job -Force -ErrorAction SilentlyContinue }
        Clear-TestState
    }

    It 'Start-Job: Get-Process | Select-Object Name, Id, WorkingSet64 goes through a pipe and is sorted in the parent' {
        $server = New-IpcPipe
        $job = Start-Job {
            Import-Module $using:env:PSIPC_MODULE_PATH
            $pipe = New-IpcPipe -Name $using:server.Name -Connect -TimeoutSeconds 30
            $processes = Get-Process | Select-Object Name, Id, WorkingSet64
            $processes | Send-IpcMessage -Channel $pipe
            Close-IpcChannel -Channel $pipe
            [pscustomobject]@{ Pid = $PID; Count = @($processes).Count }
        }
        $jobs.Add($job)

        $received = Receive-IpcMessage -Channel $server -TimeoutSeconds 60 -ErrorVariable errors
        $sorted = $received | Sort-Object -Property WorkingSet64 -Descending
        $report = $job | Receive-Job -Wait -ErrorAction Stop

        $errors.Count | Should -Be 0 -Because 'the job closed its end: Receive ends by itself'
        @($received).Count | Should -Be $report.Count
        $received.Id | Should -Contain $report.Pid
        foreach ($p in $received) {
            $p.PSObject.Properties.Name | Should -Be @('Name', 'Id', 'WorkingSet64')
            $p.Id | Should -BeOfType ([int])
            $p.WorkingSet64 | Should -BeOfType ([long])
        }
        $p.PSObject.TypeNames[0] | Should -Be 'Deserialized.Selected.System.Diagnostics.Process'
        for ($i = 1; $i -lt $sorted.Count; $i++) {
            $sorted[$i - 1].WorkingSet64 | Should -BeGreaterOrEqual $sorted[$i].WorkingSet64
        }
        ($received | Where-Object Id -EQ $report.Pid).Name | Should -Match 'pwsh|dotnet'
    }

    It 'Start-Job: 100k messages in order with nothing lost (parent sends 0..99999, the job checks and reports back)' {
        $server = New-IpcPipe
        $job = Start-Job {
            Import-Module $using:env:PSIPC_MODULE_PATH
            $pipe = New-IpcPipe -Name $using:server.Name -Connect -TimeoutSeconds 30
            $expected = 0
            $firstBad = -1
            foreach ($message in (Receive-IpcMessage -Channel $pipe -Count 100000 -TimeoutSeconds 120)) {
                if ($firstBad -lt 0 -and $message -ne [string]$expected) { $firstBad = $expected }
                $expected++
            }
            "received=$expected firstBad=$firstBad" | Send-IpcMessage -Channel $pipe
            Close-IpcChannel -Channel $pipe
        }
        $jobs.Add($job)

        [string[]](0..99999) | Send-IpcMessage -Channel $server -TimeoutSeconds 60
        $server.MessagesSent | Should -Be 100000
        $report = Receive-IpcMessage -Channel $server -Count 1 -TimeoutSeconds 120
        $job | Wait-Job -Timeout 60 | Receive-Job -ErrorAction Stop

        $report | Should -Be 'received=100000 firstBad=-1'
    }

    It 'Start-Job: a job that exits without Close-IpcChannel still delivers everything it sent' {
        $server = New-IpcPipe
        $job = Start-Job {
            Import-Module $using:env:PSIPC_MODULE_PATH
            $pipe = New-IpcPipe -Name $using:server.Name -Connect -TimeoutSeconds 30
            [string[]](1..20000) | Send-IpcMessage -Channel $pipe
            $big = [byte[]]::new(2MB)
            for ($i = 0; $i -lt $big.Length; $i++) { $big[$i] = $i % 251 }
            1..4 | ForEach-Object { , $big } | Send-IpcMessage -Channel $pipe
            'last' | Send-IpcMessage -Channel $pipe
            # No Close-IpcChannel: the job's process ends with the channel open.
        }
        $jobs.Add($job)

        $received = Receive-IpcMessage -Channel $server -Count 20005 -TimeoutSeconds 120
        $received.Count | Should -Be 20005
        $received[0] | Should -Be '1'
        $received[19999] | Should -Be '20000'
        $expectedBig = [byte[]]::new(2MB)
        for ($i = 0; $i -lt $expectedBig.Length; $i++) { $expectedBig[$i] = $i % 251 }
        foreach ($k in 20000..20003) {
            [System.Linq.Enumerable]::SequenceEqual([byte[]]$received[$k], $expectedBig) | Should -BeTrue
        }
        $received[20004] | Should -Be 'last'

        $job | Wait-Job -Timeout 60 | Receive-Job -ErrorAction Stop
        $job.State | Should -Be 'Completed'
        Remove-Job -Job $job -Force   # the job's process goes away with it
        $rest = Receive-IpcMessage -Channel $server -TimeoutSeconds 30 -ErrorVariable errors
        $rest | Should -BeNullOrEmpty
        $errors.FullyQualifiedErrorId | Should -Not -Contain 'ReceiveTimeout,PsIpc.Commands.ReceiveIpcMessageCommand' -Because 'the connection ends when the process is gone'
        $errors.FullyQualifiedErrorId | Should -Not -Contain 'PeerDisconnected,PsIpc.Commands.ReceiveIpcMessageCommand' -Because 'it ended at a message boundary'
    }

    It 'a child pwsh that exits without Close-IpcChannel delivers everything and ends the stream cleanly' {
        $server = New-IpcPipe
        $child = Start-TestPwshChild {
            param($Name)
            $pipe = New-IpcPipe -Name $Name -Connect -TimeoutSeconds 30
            [string[]](1..50000) | Send-IpcMessage -Channel $pipe
            exit 3
        } -ArgumentList $server.Name
        $received = Receive-IpcMessage -Channel $server -TimeoutSeconds 120 -ErrorVariable errors
        $result = Wait-PwshChild $child -TimeoutSeconds 30

        $result.ExitCode | Should -Be 3 -Because $result.Error
        $errors.Count | Should -Be 0
        $received.Count | Should -Be 50000
        $received[0] | Should -Be '1'
        $received[-1] | Should -Be '50000'
    }

    It 'Start-ThreadJob: a thread job connects by name, sends, and gets the reply sent to its envelope' {
        $server = New-IpcPipe
        $name = $server.Name
        $job = Start-ThreadJob {
            Import-Module $using:env:PSIPC_MODULE_PATH
            $pipe = New-IpcPipe -Name $using:name -Connect -TimeoutSeconds 30
            1..100 | ForEach-Object { "thread $_" } | Send-IpcMessage -Channel $pipe
            Receive-IpcMessage -Channel $pipe -Count 1 -TimeoutSeconds 30
            Close-IpcChannel -Channel $pipe
        }
        $jobs.Add($job)

        $envelopes = Receive-IpcMessage -Channel $server -Count 100 -TimeoutSeconds 30 -Envelope
        $envelopes.Count | Should -Be 100
        $envelopes.Body | Should -Be (1..100 | ForEach-Object { "thread $_" })
        $envelopes[0].SenderProcessId | Should -Be $PID
        'thanks' | Send-IpcMessage -Channel $envelopes[-1].Sender
        $job | Wait-Job -Timeout 30 | Receive-Job -ErrorAction Stop | Should -Be 'thanks'
        Receive-IpcMessage -Channel $server -TimeoutSeconds 10 | Should -BeNullOrEmpty
    }

    It 'ForEach-Object -Parallel: five workers fan in to one server (-MaxClients 5); Receive ends when all five closed' {
        $server = New-IpcPipe -MaxClients 5
        $job = 1..5 | ForEach-Object -ThrottleLimit 5 -AsJob -Parallel {
            Import-Module $using:env:PSIPC_MODULE_PATH
            $worker = $_
            $pipe = New-IpcPipe -Name ($using:server).Name -Connect -TimeoutSeconds 30
            1..200 | ForEach-Object { "w$worker-$_" } | Send-IpcMessage -Channel $pipe
            Close-IpcChannel -Channel $pipe
        }
        $jobs.Add($job)

        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        $received = Receive-IpcMessage -Channel $server -TimeoutSeconds 90 -ErrorVariable errors
        $sw.Stop()
        $job | Wait-Job -Timeout 30 | Receive-Job -ErrorAction Stop

        $errors.Count | Should -Be 0 -Because 'Receive ends by itself once the five clients have come and gone'
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 90
        $server.ClientsAccepted | Should -Be 5
        $received.Count | Should -Be 1000
        foreach ($worker in 1..5) {
            $mine = $received | Where-Object { $_ -like "w$worker-*" }
            $mine | Should -Be (1..200 | ForEach-Object { "w$worker-$_" }) -Because "worker $worker's messages arrive complete and in order"
        }
    }

    It 'ForEach-Object -Parallel workers that end without Close-IpcChannel: Receive still gets everything and ends' {
        $server = New-IpcPipe -MaxClients 3
        1..3 | ForEach-Object -ThrottleLimit 3 -Parallel {
            Import-Module $using:env:PSIPC_MODULE_PATH
            $worker = $_
            $pipe = New-IpcPipe -Name ($using:server).Name -Connect -TimeoutSeconds 30
            1..500 | ForEach-Object { "w$worker-$_" } | Send-IpcMessage -Channel $pipe
            # No Close-IpcChannel: the worker's runspace ends with the channel open.
        }
        $received = Receive-IpcMessage -Channel $server -TimeoutSeconds 30 -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.FullyQualifiedErrorId | Should -BeNullOrEmpty -Because 'the workers are gone: the stream ends by itself, cleanly'
        $received.Count | Should -Be 1500
        foreach ($worker in 1..3) {
            $received | Where-Object { $_ -like "w$worker-*" } | Should -Be (1..500 | ForEach-Object { "w$worker-$_" })
        }
    }

    It 'Start-Process pwsh: a child process is a client that answers requests' {
        $server = New-IpcPipe
        $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$($env:PSIPC_MODULE_PATH -replace "'", "''")'
`$pipe = New-IpcPipe -Name '$($server.Name)' -Connect -TimeoutSeconds 30
while (`$true) {
    `$request = Receive-IpcMessage -Channel `$pipe -Count 1 -TimeoutSeconds 60
    if (`$request -eq 'quit') { break }
    `$request.ToUpperInvariant() | Send-IpcMessage -Channel `$pipe
}
Close-IpcChannel -Channel `$pipe
exit 0
"@
        $pwsh = Get-PwshPath
        $arguments = @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive', '-EncodedCommand', [Convert]::ToBase64String([System.Text.Encoding]::Unicode.GetBytes($script)))
        $stderr = Join-Path ([System.IO.Path]::GetTempPath()) "psipct-$([guid]::NewGuid().ToString('N')).err"
        $process = Start-Process -FilePath $pwsh.FilePath -ArgumentList $arguments -PassThru -RedirectStandardError $stderr -RedirectStandardOutput "$stderr.out"
        $null = Register-TestProcess $process
        try {
            'hello', 'world' | Send-IpcMessage -Channel $server -TimeoutSeconds 60
            $answers = Receive-IpcMessage -Channel $server -Count 2 -TimeoutSeconds 60 -Envelope
            'quit' | Send-IpcMessage -Channel $server
            $process.WaitForExit(30000) | Should -BeTrue

            $answers.Body | Should -Be @('HELLO', 'WORLD')
            $answers[0].SenderProcessId | Should -Be $process.Id
            $process.ExitCode | Should -Be 0 -Because (Get-Content -Raw -LiteralPath $stderr)
            Receive-IpcMessage -Channel $server -TimeoutSeconds 10 -ErrorVariable errors | Should -BeNullOrEmpty
            $errors.Count | Should -Be 0
        }
        finally {
            Remove-Item -LiteralPath $stderr, "$stderr.out" -ErrorAction SilentlyContinue
        }
    }

    It 'objects keep their values through a real process' {
        $server = New-IpcPipe
        $child = Start-TestPwshChild {
            param($Name)
            $pipe = New-IpcPipe -Name $Name -Connect -TimeoutSeconds 30
            $values = @(
                'text with ünïcödé'
                42
                [long]9007199254740993
                3.14159265358979
                [double]::NaN
                $true
                $false
                [datetime]::new(2024, 2, 29, 13, 45, 56, 789, [System.DateTimeKind]::Utc)
                [datetime]::new(2001, 1, 2, 3, 4, 5, [System.DateTimeKind]::Local)
                @{ a = 1; b = 'two'; c = @{ d = 4.5 } }
                [pscustomobject]@{ Name = 'outer'; Count = 3; Inner = [pscustomobject]@{ Level = 2; Tags = @('x', 'y') } }
                , [byte[]](0, 1, 2, 127, 128, 255, 0)
                $null
                , @(1, 'two', 3.5, $false)
                [guid]'7d444840-9dc0-11d1-b245-5ffdce74fad2'
                [decimal]'12345.6789'
                [timespan]::FromMinutes(90)
            )
            foreach ($value in $values) { Send-IpcMessage -Channel $pipe -InputObject $value }
            Close-IpcChannel -Channel $pipe
        } -ArgumentList $server.Name

        $got = @(Receive-IpcMessage -Channel $server -TimeoutSeconds 60 -ErrorVariable errors)
        $result = Wait-PwshChild $child -TimeoutSeconds 30
        $result.ExitCode | Should -Be 0 -Because $result.Error
        $errors.Count | Should -Be 0
        $got.Count | Should -Be 17

        $got[0] | Should -BeExactly 'text with ünïcödé'
        $got[1] | Should -BeOfType ([int]); $got[1] | Should -Be 42
        $got[2] | Should -BeOfType ([long]); $got[2] | Should -Be 9007199254740993
        $got[3] | Should -BeOfType ([double]); $got[3] | Should -Be 3.14159265358979
        [double]::IsNaN($got[4]) | Should -BeTrue
        $got[5] | Should -BeOfType ([bool]); $got[5] | Should -BeTrue
        $got[6] | Should -BeOfType ([bool]); $got[6] | Should -BeFalse
        $got[7] | Should -BeOfType ([datetime])
        $got[7].Kind | Should -Be 'Utc'
        $got[7] | Should -Be ([datetime]::new(2024, 2, 29, 13, 45, 56, 789, [System.DateTimeKind]::Utc))
        $got[8].ToUniversalTime() | Should -Be ([datetime]::new(2001, 1, 2, 3, 4, 5, [System.DateTimeKind]::Local).ToUniversalTime())

        $got[9] | Should -BeOfType ([hashtable])
        $got[9].Keys | Sort-Object | Should -Be @('a', 'b', 'c')
        $got[9].a | Should -Be 1
        $got[9].b | Should -Be 'two'
        $got[9].c.d | Should -Be 4.5

        $got[10].PSObject.TypeNames | Should -Contain 'Deserialized.System.Management.Automation.PSCustomObject'
        $got[10].Name | Should -Be 'outer'
        $got[10].Count | Should -Be 3
        $got[10].Inner.Level | Should -Be 2
        @($got[10].Inner.Tags) | Should -Be @('x', 'y')

        , $got[11] | Should -BeOfType ([byte[]])
        [System.Linq.Enumerable]::SequenceEqual([byte[]]$got[11], [byte[]](0, 1, 2, 127, 128, 255, 0)) | Should -BeTrue

        $got[12] | Should -BeNullOrEmpty
        $null -eq $got[12] | Should -BeTrue

        @($got[13]).Count | Should -Be 4
        @($got[13])[0] | Should -Be 1
        @($got[13])[1] | Should -Be 'two'
        @($got[13])[2] | Should -Be 3.5
        @($got[13])[3] | Should -BeFalse

        $got[14] | Should -BeOfType ([guid])
        $got[14] | Should -Be ([guid]'7d444840-9dc0-11d1-b245-5ffdce74fad2')
        $got[15] | Should -BeOfType ([decimal])
        $got[15] | Should -Be ([decimal]'12345.6789')
        $got[16] | Should -BeOfType ([timespan])
        $got[16].TotalMinutes | Should -Be 90
    }

    It 'kill -9 of a child pwsh sender mid-stream: the receiver keeps what arrived, in order, and ends' {
        $server = New-IpcPipe
        $child = Start-TestPwshChild {
            param($Name)
            $pipe = New-IpcPipe -Name $Name -Connect -TimeoutSeconds 30
            'ready'
            & { $i = 0; while ($true) { [string]$i; $i++ } } | Send-IpcMessage -Channel $pipe
        } -ArgumentList $server.Name
        Read-PeerLine $child | Should -Be 'ready'

        $first = Receive-IpcMessage -Channel $server -Count 5000 -TimeoutSeconds 60
        Stop-TestProcess $child
        $child.HasExited | Should -BeTrue
        $rest = @(Receive-IpcMessage -Channel $server -TimeoutSeconds 30 -ErrorVariable errors)

        $all = @($first) + $rest
        $all.Count | Should -BeGreaterOrEqual 5000
        for ($i = 0; $i -lt $all.Count; $i++) {
            if ($all[$i] -ne [string]$i) { $all[$i] | Should -Be ([string]$i) -Because "message $i arrives whole and in order" }
        }
        # The kill lands between frames (a clean end) or inside one (PeerDisconnected); never a timeout.
        $errors.FullyQualifiedErrorId | Where-Object { $_ -ne 'PeerDisconnected,PsIpc.Commands.ReceiveIpcMessageCommand' } | Should -BeNullOrEmpty
        $errors.Count | Should -BeLessOrEqual 1
    }

    It 'kill -9 of a python sender in the middle of a frame: the receiver keeps every whole message, then PeerDisconnected' {
        $server = New-IpcPipe
        $peer = Start-PythonPeer @'
s = connect(sys.argv[1])
s.sendall(hello())
read_frame(s)
s.sendall(b''.join(text(str(i)) for i in range(1000)) + frame(BYTES, bytes(100))[:40])
say('sent')
hang()
'@ -ArgumentList $server.Address
        Read-PeerLine $peer | Should -Be 'sent'
        Wait-Until { $server.MessagesReceived -eq 1000 } | Should -BeTrue
        Stop-TestProcess $peer

        $got = @(Receive-IpcMessage -Channel $server -TimeoutSeconds 30 -ErrorVariable errors -ErrorAction SilentlyContinue)
        $got.Count | Should -Be 1000
        $got | Should -Be ([string[]](0..999))
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'PeerDisconnected,PsIpc.Commands.ReceiveIpcMessageCommand'
        $errors[0].Exception.Message | Should -BeLike '*40 bytes of it had arrived*'
    }
}
