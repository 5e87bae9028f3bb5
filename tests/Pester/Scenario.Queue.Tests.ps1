BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
    . $PSScriptRoot/QueueHelpers.ps1
    $Broker = Get-QueueTestBroker
}

AfterAll {
    Clear-TestState
}

# Separate pwsh processes on one broker: a producer and a consumer, workers sharing a queue, a worker
# killed with kill -9, publish/subscribe, and what Receive-IpcMessage acknowledges when.
Describe 'Scenario: scripts talking through a RabbitMQ queue' {
    AfterEach {
        Clear-TestState
    }

    It 'one process sends text and JSON objects, another receives them as strings and objects' {
        $queue = New-TestQueueName
        $r = Invoke-PwshChild {
            param($Uri, $Queue)
            $q = Connect-IpcQueue -Uri $Uri -Queue $Queue -TimeoutSeconds 30
            'web01', 'web02' | Send-IpcMessage $q
            [pscustomobject]@{ Server = 'db01'; Port = 5432 } | Send-IpcMessage $q -Format Json
            Close-IpcChannel $q    # returns once the broker confirmed everything
        } -ArgumentList $Broker.Uri, $queue
        $r.ExitCode | Should -Be 0 -Because $r.Error

        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -TimeoutSeconds 30
        $got = Receive-IpcMessage $q -Count 3 -TimeoutSeconds 30
        $got[0..1] | Should -Be @('web01', 'web02')
        $got[2].Server | Should -Be 'db01'
        $got[2].Port | Should -Be 5432
    }

    It 'objects are refused without -Format Json unless both sides opted in to CliXml (-AllowCliXml)' {
        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue (New-TestQueueName) -TimeoutSeconds 30
        { [pscustomobject]@{ A = 1 } | Send-IpcMessage $q -ErrorAction Stop } |
            Should -Throw -ErrorId 'OperationNotSupported,PsIpc.Commands.SendIpcMessageCommand' -ExpectedMessage '*-Format Json*'

        $c = Connect-IpcQueue -Uri $Broker.Uri -Queue (New-TestQueueName) -AllowCliXml -TimeoutSeconds 30
        Get-Item -LiteralPath $PSHOME | Send-IpcMessage $c -WarningAction SilentlyContinue   # cut at -Depth 2: fine here
        $back = Receive-IpcMessage $c -Count 1 -TimeoutSeconds 30
        $back.PSObject.TypeNames[0] | Should -Be 'Deserialized.System.IO.DirectoryInfo'
    }

    It 'a message that cannot be decoded goes to the dead-letter queue with an error, never silently' {
        $queue = New-TestQueueName
        $producer = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -DeadLetterQueue "$queue.dead" -AllowCliXml -TimeoutSeconds 30
        [pscustomobject]@{ Kind = 'CliXml' } | Send-IpcMessage $producer
        'fine' | Send-IpcMessage $producer
        # This consumer did not opt in to CliXml: it refuses the first and carries on.
        $consumer = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -DeadLetterQueue "$queue.dead" -TimeoutSeconds 30
        # -Count counts the refused message too.
        $got = Receive-IpcMessage $consumer -Count 2 -TimeoutSeconds 30 -ErrorVariable decodeErrors -ErrorAction SilentlyContinue
        $got | Should -Be 'fine'
        $decodeErrors.FullyQualifiedErrorId | Should -Be 'DecodeFailed,PsIpc.Commands.ReceiveIpcMessageCommand'

        $dead = Connect-IpcQueue -Uri $Broker.Uri -Queue "$queue.dead" -AllowCliXml -TimeoutSeconds 30
        (Receive-IpcMessage $dead -Count 1 -TimeoutSeconds 30).Kind | Should -Be 'CliXml'
    }

    It 'Select-Object -First takes what it needs; the rest stays on the queue, none acknowledged unseen' {
        $queue = New-TestQueueName
        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -Prefetch 100 -TimeoutSeconds 30
        1..10 | ForEach-Object { "job $_" } | Send-IpcMessage $q
        $first = Receive-IpcMessage $q -TimeoutSeconds 30 | Select-Object -First 3
        $first | Should -Be @('job 1', 'job 2', 'job 3')
        $rest = Receive-IpcMessage $q -Count 7 -TimeoutSeconds 30
        @($first) + @($rest) | Sort-Object { [int]($_ -replace '\D') } | Should -Be (1..10 | ForEach-Object { "job $_" })
        Receive-IpcMessage $q -TimeoutSeconds 0 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It 'Ctrl+C stops a Receive in the middle of a job: that job counts as delivered, the rest stays on the queue' {
        $queue = New-TestQueueName
        $ps = [powershell]::Create()
        # Each job waits for an event that never comes, until Ctrl+C.
        $null = $ps.AddScript("Import-Module '$env:PSIPC_MODULE_PATH'; `$q = Connect-IpcQueue -Uri '$($Broker.Uri)' -Queue '$queue' -TimeoutSeconds 30; 'waiting'; Receive-IpcMessage `$q | ForEach-Object { `$_; Wait-Event -SourceIdentifier never }")
        $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
        $null = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $output)
        Wait-Until { $output.Count -gt 0 } -TimeoutSeconds 60 | Should -BeTrue
        $p = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -TimeoutSeconds 30
        'a', 'b', 'c' | Send-IpcMessage $p
        Wait-Until { $output.Count -gt 1 } -TimeoutSeconds 60 | Should -BeTrue
        $output[1] | Should -Be 'a'
        # 'a' is in the pipeline's hands (ForEach-Object never finishes it); stop the pipeline.
        $stopping = $ps.BeginStop($null, $null)
        $stopping.AsyncWaitHandle.WaitOne(30000) | Should -BeTrue -Because 'Ctrl+C ends the wait'
        $ps.Dispose()   # closes its runspace, so its channel: what it held unacknowledged goes back to the queue
        Receive-IpcMessage $p -Count 2 -TimeoutSeconds 30 | Should -Be @('b', 'c')
        Receive-IpcMessage $p -TimeoutSeconds 1 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty -Because "'a' reached ForEach-Object: acknowledged"
    }

    It 'two worker processes share the work of one queue: every job done once' {
        $queue = New-TestQueueName
        $worker = {
            param($Uri, $Queue)
            $q = Connect-IpcQueue -Uri $Uri -Queue $Queue -Prefetch 1 -TimeoutSeconds 30
            Receive-IpcMessage $q -TimeoutSeconds 0 -ErrorAction SilentlyContinue   # consuming from now on
            'ready'
            # One job at a time, until the producer's 'stop' (waiting on state: an idle gap ends nothing on a slow machine).
            while ($null -ne ($job = Receive-IpcMessage $q -Count 1 -TimeoutSeconds 120) -and $job -ne 'stop') { "did $job" }
            Close-IpcChannel $q   # a second 'stop' this worker may hold goes back to the queue, for the other
        }
        $w1 = Start-TestPwshChild $worker -ArgumentList $Broker.Uri, $queue
        $w2 = Start-TestPwshChild $worker -ArgumentList $Broker.Uri, $queue
        Read-PeerLine $w1 -TimeoutSeconds 60 | Should -Be 'ready'
        Read-PeerLine $w2 -TimeoutSeconds 60 | Should -Be 'ready'
        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -TimeoutSeconds 30
        1..40 | ForEach-Object { "job $_" } | Send-IpcMessage $q
        'stop', 'stop' | Send-IpcMessage $q   # one for each worker, after every job

        $r1 = $w1 | Wait-PwshChild -TimeoutSeconds 120
        $r2 = $w2 | Wait-PwshChild -TimeoutSeconds 120
        $done1 = @($r1.Output | Where-Object { $_ -like 'did job*' })
        $done2 = @($r2.Output | Where-Object { $_ -like 'did job*' })
        $done1.Count | Should -BeGreaterThan 0 -Because "both workers take jobs ($($r1.Error))"
        $done2.Count | Should -BeGreaterThan 0 -Because "both workers take jobs ($($r2.Error))"
        @($done1) + @($done2) | Sort-Object { [int]($_ -replace '\D') } | Should -Be (1..40 | ForEach-Object { "did job $_" })
    }

    It 'a worker killed with kill -9 loses nothing: what it had not finished is delivered to another' {
        $queue = New-TestQueueName
        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -TimeoutSeconds 30
        1..30 | ForEach-Object { "job $_" } | Send-IpcMessage $q
        # The worker holds up to 10 unacknowledged jobs, finishes 4 and hangs on the 5th.
        $victim = Start-TestPwshChild {
            param($Uri, $Queue)
            $q = Connect-IpcQueue -Uri $Uri -Queue $Queue -Prefetch 10 -TimeoutSeconds 30
            Receive-IpcMessage $q | ForEach-Object {
                [Console]::Out.WriteLine("got $_")
                if ($_ -eq 'job 5') { [Console]::In.ReadLine() }   # never answered: it hangs here
            }
        } -ArgumentList $Broker.Uri, $queue -KeepStandardInput
        $gotByVictim = foreach ($i in 1..5) { (Read-PeerLine $victim -TimeoutSeconds 60) -replace '^got ' }
        $gotByVictim | Should -Be @('job 1', 'job 2', 'job 3', 'job 4', 'job 5')
        $victim | Stop-TestProcess

        # Jobs 5-30 come back: the one it was working on and those it held. Anything more is a duplicate.
        $rest = @(Receive-IpcMessage $q -Count 26 -TimeoutSeconds 60) + @(Receive-IpcMessage $q -TimeoutSeconds 1 -ErrorAction SilentlyContinue)
        $lost = 1..30 | ForEach-Object { "job $_" } | Where-Object { $_ -notin @($gotByVictim) + $rest }
        $twice = @($rest | Where-Object { $_ -in $gotByVictim })
        $lost | Should -BeNullOrEmpty
        $twice | Should -Contain 'job 5' -Because 'the job it was working on was never acknowledged'
        # Jobs 1-4 were done; their acknowledgements go out within 20 ms (batched), so a kill right after
        # can bring some of them back: at-least-once. Count them; each of jobs 6-30 comes exactly once.
        Write-Host "    kill -9: $($twice.Count) of the 5 jobs the worker had taken came again ($($twice -join ', '))"
        @($rest | Where-Object { $_ -notin $gotByVictim }).Count | Should -Be 25
    }

    It 'publish/subscribe: every subscriber gets every event, in this process or another; a topic subscriber only its keys' {
        $exchange = New-TestQueueName 'events'
        $elsewhere = Start-TestPwshChild {
            param($Uri, $Exchange)
            $s = Connect-IpcQueue -Uri $Uri -Exchange $Exchange -ExchangeType Topic -Subscribe -TimeoutSeconds 30
            'ready'
            Receive-IpcMessage $s -Count 2 -TimeoutSeconds 60 | ForEach-Object Key
        } -ArgumentList $Broker.Uri, $exchange
        $all = Connect-IpcQueue -Uri $Broker.Uri -Exchange $exchange -ExchangeType Topic -Subscribe -TimeoutSeconds 30
        $web = Connect-IpcQueue -Uri $Broker.Uri -Exchange $exchange -ExchangeType Topic -BindingKey 'deploy.web' -Subscribe -TimeoutSeconds 30
        Read-PeerLine $elsewhere -TimeoutSeconds 60 | Should -Be 'ready'

        foreach ($key in 'deploy.web', 'deploy.db') {
            $p = Connect-IpcQueue -Uri $Broker.Uri -Exchange $exchange -ExchangeType Topic -RoutingKey $key -TimeoutSeconds 30
            [pscustomobject]@{ Key = $key } | Send-IpcMessage $p -Format Json
            Close-IpcChannel $p
        }
        (Receive-IpcMessage $all -Count 2 -TimeoutSeconds 30).Key | Should -Be @('deploy.web', 'deploy.db')
        (Receive-IpcMessage $web -Count 1 -TimeoutSeconds 30).Key | Should -Be 'deploy.web'
        Receive-IpcMessage $web -TimeoutSeconds 1 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $r = $elsewhere | Wait-PwshChild -TimeoutSeconds 60
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $r.Output | Should -Be @('deploy.web', 'deploy.db')
    }
}
