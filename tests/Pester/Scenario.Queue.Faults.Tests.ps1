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

    It 'a publish that cannot go out (the link to the broker frozen) ends at its timeout with SendTimeout, and the channel goes on once it thaws' {
        # rabbitmq-dotnet-client#1930: a publish into a connection that stopped moving waits for room in the client's
        # write queue, for minutes. Here the connection goes through a TCP relay that is then frozen (SIGSTOP): the
        # broker itself stays up for everyone else, the producer's bytes go nowhere, no confirm or heartbeat comes back.
        $relay = Start-PythonPeer @'
import selectors, threading
listener = socket.socket(); listener.bind(('127.0.0.1', 0)); listener.listen(8)
print(listener.getsockname()[1], flush=True)
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data: break
            b.sendall(data)
    except OSError: pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
while True:
    client, _ = listener.accept()
    broker = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
    threading.Thread(target=pump, args=(client, broker), daemon=True).start()
    threading.Thread(target=pump, args=(broker, client), daemon=True).start()
'@ -ArgumentList $Broker.Port
        $relayPort = [int](Read-PeerLine $relay -TimeoutSeconds 30)
        $queue = New-TestQueueName 'frozen'
        $producer = Start-TestPwshChild {
            param($Uri, $Queue)
            $q = Connect-IpcQueue -Uri $Uri -Queue $Queue -PublishTimeoutSeconds 600 -TimeoutSeconds 60
            Send-IpcMessage $q -InputObject 'before' -TimeoutSeconds 60
            [Console]::Out.WriteLine('connected')
            $null = [Console]::In.ReadLine()   # the relay is frozen now
            # 400 x 128 KiB: far more than the socket buffers and the client's write queue hold (about 16 MiB).
            $payload = [byte[]]::new(128KB)
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            try {
                1..400 | ForEach-Object { , $payload } | Send-IpcMessage $q -TimeoutSeconds 20 -ErrorAction Stop
                [Console]::Out.WriteLine('sent')
            }
            catch { [Console]::Out.WriteLine("error $($_.FullyQualifiedErrorId)") }
            [Console]::Out.WriteLine("after $([int]$sw.Elapsed.TotalSeconds) s, stalls $($q.PublishStalls)")
            $null = [Console]::In.ReadLine()   # thawed
            Send-IpcMessage $q -InputObject 'after' -TimeoutSeconds 240   # returns once the broker confirmed it
            [Console]::Out.WriteLine("confirmed; unconfirmed $($q.Unconfirmed), republished $($q.Republished), stalls $($q.PublishStalls)")
            Close-IpcChannel $q
        } -ArgumentList "amqp://127.0.0.1:$relayPort/", $queue -KeepStandardInput

        Read-PeerLine $producer -TimeoutSeconds 120 | Should -Be 'connected'
        & kill -STOP $relay.Id
        try {
            $producer.StandardInput.WriteLine('frozen')
            $producer.StandardInput.Flush()
            # The safety net is generous (the Send's own timeout is 20 s): a hang is what this test is about.
            Read-PeerLine $producer -TimeoutSeconds 180 | Should -Be 'error SendTimeout,PsIpc.Commands.SendIpcMessageCommand'
            $took = Read-PeerLine $producer -TimeoutSeconds 30
            Write-Host "    frozen link: the send ended $took"
        }
        finally {
            & kill -CONT $relay.Id
        }
        $producer.StandardInput.WriteLine('thawed')
        $producer.StandardInput.Flush()
        $r = $producer | Wait-PwshChild -TimeoutSeconds 300
        $r.ExitCode | Should -Be 0 -Because $r.Error
        $confirmed = @($r.Output | Where-Object { $_ -like 'confirmed; *' })
        $confirmed | Should -BeLike 'confirmed; unconfirmed 0,*'
        Write-Host "    after the thaw: $confirmed"

        # 'after' is on the broker (a consumer straight to it, not through the relay).
        $q = Connect-IpcQueue -Uri $Broker.Uri -Queue $queue -TimeoutSeconds 30
        $seen = [System.Collections.Generic.List[object]]::new()
        $until = [DateTime]::UtcNow.AddMinutes(2)
        while ('after' -notin @($seen | Where-Object { $_ -is [string] }) -and [DateTime]::UtcNow -lt $until) {
            foreach ($m in Receive-IpcMessage $q -Count 100 -TimeoutSeconds 10 -ErrorAction SilentlyContinue) { $seen.Add($m) }
        }
        @($seen | Where-Object { $_ -is [string] }) | Should -Contain 'before'
        @($seen | Where-Object { $_ -is [string] }) | Should -Contain 'after'
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
