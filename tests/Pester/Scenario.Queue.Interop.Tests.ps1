BeforeDiscovery {
    . $PSScriptRoot/QueueHelpers.ps1
    # Under CI a missing python3-pika fails these tests (build.ps1 installs it with the broker).
    $NoPika = -not (Get-PikaPython) -and -not $script:QueueTestsInCI
}

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
    . $PSScriptRoot/QueueHelpers.ps1
    $Broker = Get-QueueTestBroker
    $Python = Get-PikaPython
    $PikaUri = "amqp://$($Broker.UserName):$($Broker.Password)@127.0.0.1:$($Broker.Port)/%2F"
}

AfterAll {
    Clear-TestState
}

# A Python program (Debian's python3-pika) on the same queues: the content types make the formats readable both ways.
Describe 'Scenario: a Python pika program and PsIpc on one queue' -Skip:$NoPika {
    AfterEach {
        Clear-TestState
    }

    It 'PsIpc receives what pika publishes: text, JSON as objects, and a body without a content type as text' {
        $Python | Should -Not -BeNullOrEmpty -Because 'python3-pika is installed (apt-get install python3-pika)'
        $queue = New-TestQueueName 'py'
        $peer = Start-PikaPeer -Python $Python -ArgumentList 'publish', $PikaUri, $queue
        Read-PeerLine $peer -TimeoutSeconds 60 | Should -Be 'published'

        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -TimeoutSeconds 30
        $got = Receive-IpcMessage $q -Count 3 -TimeoutSeconds 30
        $got[0] | Should -Be 'hello from python'
        $got[1].lang | Should -Be 'python'
        $got[1].n | Should -Be 1
        $got[2] | Should -Be 'no content type'
    }

    It 'pika reads what PsIpc sends, persistent, with content types it understands' {
        $Python | Should -Not -BeNullOrEmpty -Because 'python3-pika is installed (apt-get install python3-pika)'
        $queue = New-TestQueueName 'py'
        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -TimeoutSeconds 30
        'hello from PowerShell' | Send-IpcMessage $q
        [pscustomobject]@{ Lang = 'PowerShell'; N = 2 } | Send-IpcMessage $q -Format Json
        Send-IpcMessage $q -InputObject ([byte[]](104, 105))

        $peer = Start-PikaPeer -Python $Python -ArgumentList 'consume', $PikaUri, $queue, '3'
        $lines = foreach ($i in 1..3) { Read-PeerLine $peer -TimeoutSeconds 60 | ConvertFrom-Json }
        $lines.content_type | Should -Be @('text/plain; charset=utf-8', 'application/json', 'application/octet-stream')
        $lines.delivery_mode | Should -Be @(2, 2, 2)
        $lines[0].body | Should -Be 'hello from PowerShell'
        ($lines[1].body | ConvertFrom-Json).Lang | Should -Be 'PowerShell'
        $lines[2].body | Should -Be 'hi'
    }
}
