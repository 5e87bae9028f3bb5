BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
    . $PSScriptRoot/QueueHelpers.ps1
    $Broker = Get-QueueTestBroker
}

AfterAll {
    Clear-TestState
}

# The broker going away under a stream of confirmed messages, and a message too large to send.
Describe 'Scenario: RabbitMQ faults' {
    AfterEach {
        Clear-TestState
    }

    It 'the broker restarts in the middle of 10,000 confirmed messages: every one arrives, none lost, duplicates counted' {
        $queue = New-TestQueueName 'restart'
        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -Prefetch 200 -TimeoutSeconds 30
        # At message 5,000 the producer says so and goes on: the broker is stopped while messages are in
        # flight. At 7,000 it waits until the broker is down, then sends the rest into no broker at all.
        $producer = Start-TestPwshChild {
            param($Uri, $Queue)
            $q = Connect-IpcQueue -Uri $Uri -Queue $Queue -PublishTimeoutSeconds 600 -TimeoutSeconds 30
            1..10000 | ForEach-Object {
                if ($_ -eq 5001) { [Console]::Out.WriteLine('half') }
                if ($_ -eq 7001) { $null = [Console]::In.ReadLine() }
                "m$_"
            } | Send-IpcMessage $q   # returns once the broker confirmed every message
            [Console]::Out.WriteLine("confirmed $($q.MessagesSent) unconfirmed $($q.Unconfirmed)")
            [Console]::Out.WriteLine("republished $($q.Republished)")
            Close-IpcChannel $q
        } -ArgumentList $Broker.Uri, $queue -KeepStandardInput

        $seen = [System.Collections.Generic.HashSet[string]]::new()
        $duplicates = 0
        foreach ($m in Receive-IpcMessage $q -Count 1000 -TimeoutSeconds 120) { if (-not $seen.Add($m)) { $duplicates++ } }
        Read-PeerLine $producer -TimeoutSeconds 120 | Should -Be 'half'

        $state = Get-RabbitMqBroker -Path $env:PSIPC_RABBITMQ_STATE
        Restart-RabbitMqBroker $state -WhileStopped {
            $producer.StandardInput.WriteLine('go on')
            $producer.StandardInput.Flush()
        }

        # Both clients reconnect by themselves; the consumer takes whatever arrives until it has all.
        $until = [DateTime]::UtcNow.AddMinutes(5)
        while ($seen.Count -lt 10000 -and [DateTime]::UtcNow -lt $until) {
            foreach ($m in Receive-IpcMessage $q -Count 1000 -TimeoutSeconds 10 -ErrorAction SilentlyContinue) {
                if (-not $seen.Add($m)) { $duplicates++ }
            }
        }
        $r = $producer | Wait-PwshChild -TimeoutSeconds 300
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $r.Output | Should -Contain 'confirmed 10000 unconfirmed 0'

        $lost = 1..10000 | Where-Object { -not $seen.Contains("m$_") }
        $lost | Should -BeNullOrEmpty -Because 'every confirmed message is on the broker'
        Write-Host "    broker restart: 10000 received, $duplicates duplicate(s); the producer $($r.Output -match '^republished')"
        $duplicates | Should -BeLessOrEqual (256 + 200) -Because 'only messages in flight at the restart come twice: at most the publish window and the prefetch'
    }

    It 'a message larger than the limit is refused before it is sent: MessageTooLarge' {
        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue (New-TestQueueName) -MaxMessageSize 1MB -TimeoutSeconds 30
        { Send-IpcMessage $q -InputObject ([byte[]]::new(1MB + 1)) -ErrorAction Stop } |
            Should -Throw -ErrorId 'MessageTooLarge,PsIpc.Commands.SendIpcMessageCommand'
        Send-IpcMessage $q -InputObject ([byte[]]::new(1MB))
        (Receive-IpcMessage $q -Count 1 -TimeoutSeconds 30).Length | Should -Be 1MB
        $q.MessagesSent | Should -Be 1
    }

    It 'the default limit is the client''s 64 MiB' {
        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue (New-TestQueueName) -TimeoutSeconds 30
        { Send-IpcMessage $q -InputObject ([byte[]]::new(64MB + 1)) -ErrorAction Stop } |
            Should -Throw -ErrorId 'MessageTooLarge,PsIpc.Commands.SendIpcMessageCommand' -ExpectedMessage '*64 MiB*'
    }
}
