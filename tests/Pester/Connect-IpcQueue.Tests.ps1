BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
    . $PSScriptRoot/QueueHelpers.ps1
    $Broker = Get-QueueTestBroker

    function Get-ClosedPort {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start()
        try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
    }
}

AfterAll {
    Clear-TestState
}

Describe 'Connect-IpcQueue' {
    AfterEach {
        Clear-TestState
    }

    Context 'Loading' {
        It 'Import-Module alone loads neither RabbitMQ.Client nor the engine; the first connect loads both in their own load context' {
            $r = Invoke-PwshChild {
                param($Uri)
                $names = { @([AppDomain]::CurrentDomain.GetAssemblies() | ForEach-Object { $_.GetName().Name } | Where-Object { $_ -in 'RabbitMQ.Client', 'PsIpc.Amqp' }) }
                "import:$((& $names) -join ',')"
                $q = Connect-IpcQueue -Uri $Uri -Queue (New-Guid).Guid -TimeoutSeconds 30
                foreach ($a in [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -in 'RabbitMQ.Client', 'PsIpc.Amqp', 'PsIpc.Transport' }) {
                    "$($a.GetName().Name):$([System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($a).GetType().Name)"
                }
                # The engine's channel is the IpcChannel type the module knows: one PsIpc.Transport.
                "same-contract:$($q -is [PsIpc.Transport.Channels.IpcChannel])"
                "transports:$(@([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'PsIpc.Transport' }).Count)"
                Close-IpcChannel $q
            } -ArgumentList $Broker.Uri
            $r.ExitCode | Should -Be 0 -Because $r.Error
            $r.Output | Should -Contain 'import:'
            $r.Output | Should -Contain 'RabbitMQ.Client:AmqpLoadContext'
            $r.Output | Should -Contain 'PsIpc.Amqp:AmqpLoadContext'
            $r.Output | Should -Contain 'PsIpc.Transport:DefaultAssemblyLoadContext'
            $r.Output | Should -Contain 'same-contract:True'
            $r.Output | Should -Contain 'transports:1'
        }

        It "another module's RabbitMQ.Client, loaded first, neither breaks it nor is used by it" {
            $other = Get-ChildItem -Path (Join-Path $RepoRoot 'tests/PsIpc.Amqp.Tests/bin') -Recurse -Filter RabbitMQ.Client.dll -ErrorAction SilentlyContinue |
                Select-Object -First 1
            if (-not $other) {
                $other = Get-ChildItem -Path (Join-Path $HOME '.nuget/packages/rabbitmq.client') -Recurse -Filter RabbitMQ.Client.dll |
                    Where-Object FullName -Match 'net8\.0' | Select-Object -First 1
            }
            $other | Should -Not -BeNullOrEmpty -Because 'a copy of RabbitMQ.Client outside the module plays the other module'
            $r = Invoke-PwshChild {
                param($Uri, $OtherPath)
                $null = [System.Reflection.Assembly]::LoadFrom($OtherPath)   # as another module would
                $q = Connect-IpcQueue -Uri $Uri -Queue (New-Guid).Guid -TimeoutSeconds 30
                'hello' | Send-IpcMessage $q
                Receive-IpcMessage $q -Count 1 -TimeoutSeconds 30
                @([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'RabbitMQ.Client' }).Count
                Close-IpcChannel $q
            } -ArgumentList $Broker.Uri, $other.FullName
            $r.ExitCode | Should -Be 0 -Because $r.Error
            $r.Output | Should -Be @('hello', '2')
        }
    }

    Context 'A channel like any other' {
        It 'returns a channel of kind Amqp that Get-IpcChannel lists and Close-IpcChannel closes' {
            $name = New-TestQueueName
            $q = Connect-IpcQueue -Uri $Broker.Uri -Queue $name -Credential $Broker.Credential -TimeoutSeconds 30
            $q.Kind | Should -Be 'Amqp'
            $q.Name | Should -Be $name
            $q.State | Should -Be 'Connected'
            $q.Address | Should -BeLike "amqp://127.0.0.1:$($Broker.Port)/*queue $name"
            $q.Address | Should -Not -Match 'guest' -Because 'no credentials in the address'
            (Get-IpcChannel -Name $name).Kind | Should -Be 'Amqp'
            Close-IpcChannel $q
            $q.State | Should -Be 'Closed'
            Get-IpcChannel -Name $name -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'takes -Name, and Send/Receive-IpcMessage find it by that name' {
            $q = Connect-IpcQueue $Broker.Uri (New-TestQueueName) -Name 'jobs-by-name' -TimeoutSeconds 30
            'by name' | Send-IpcMessage -Channel 'jobs-by-name'
            Receive-IpcMessage -Channel 'jobs-by-name' -Count 1 -TimeoutSeconds 30 | Should -Be 'by name'
            Close-IpcChannel $q
        }

        It 'connects with TLS (amqps) to a broker whose self-signed certificate is pinned' {
            $q = Connect-IpcQueue -Uri $Broker.TlsUri -Queue (New-TestQueueName) -CertificateThumbprint $Broker.CertificateThumbprint -TimeoutSeconds 30
            'secret' | Send-IpcMessage $q
            Receive-IpcMessage $q -Count 1 -TimeoutSeconds 30 | Should -Be 'secret'
            $q.Address | Should -BeLike 'amqps://*'
        }

        It 'a publisher on an exchange cannot receive: OperationNotSupported, with what to do' {
            $p = Connect-IpcQueue -Uri $Broker.Uri -Exchange (New-TestQueueName 'x') -TimeoutSeconds 30
            $p.CanReceive | Should -BeFalse
            { Receive-IpcMessage $p -TimeoutSeconds 1 -ErrorAction Stop } |
                Should -Throw -ErrorId 'OperationNotSupported,PsIpc.Commands.ReceiveIpcMessageCommand' -ExpectedMessage '*-Subscribe*'
        }
    }

    Context 'Bad input and failures: a clear error id within the timeout' {
        It 'no broker listening: BrokerUnreachable' {
            $uri = "amqp://127.0.0.1:$(Get-ClosedPort)/"
            { Connect-IpcQueue -Uri $uri -Queue q -TimeoutSeconds 1 -ErrorAction Stop } |
                Should -Throw -ErrorId 'BrokerUnreachable,PsIpc.Queue.ConnectIpcQueueCommand'
        }

        It 'a wrong password: AuthenticationFailed' {
            $bad = [pscredential]::new('guest', (ConvertTo-SecureString 'wrong' -AsPlainText -Force))
            { Connect-IpcQueue -Uri $Broker.Uri -Queue q -Credential $bad -TimeoutSeconds 10 -ErrorAction Stop } |
                Should -Throw -ErrorId 'AuthenticationFailed,PsIpc.Queue.ConnectIpcQueueCommand'
        }

        It 'an untrusted certificate: AuthenticationFailed, naming -CertificateThumbprint' {
            { Connect-IpcQueue -Uri $Broker.TlsUri -Queue q -TimeoutSeconds 10 -ErrorAction Stop } |
                Should -Throw -ErrorId 'AuthenticationFailed,PsIpc.Queue.ConnectIpcQueueCommand' -ExpectedMessage '*-CertificateThumbprint*'
        }

        It 'a queue or exchange that must exist and does not: QueueNotFound / ExchangeNotFound' {
            { Connect-IpcQueue -Uri $Broker.Uri -Queue (New-TestQueueName) -MustExist -TimeoutSeconds 10 -ErrorAction Stop } |
                Should -Throw -ErrorId 'QueueNotFound,PsIpc.Queue.ConnectIpcQueueCommand'
            { Connect-IpcQueue -Uri $Broker.Uri -Exchange (New-TestQueueName 'x') -MustExist -TimeoutSeconds 10 -ErrorAction Stop } |
                Should -Throw -ErrorId 'ExchangeNotFound,PsIpc.Queue.ConnectIpcQueueCommand'
        }

        It 'not an AMQP URI: HostNotFound, before any connection' {
            { Connect-IpcQueue -Uri 'http://localhost/' -Queue q -ErrorAction Stop } |
                Should -Throw -ErrorId 'HostNotFound,PsIpc.Queue.ConnectIpcQueueCommand'
        }

        It 'needs -Queue or -Exchange, and -Subscribe goes with -Exchange' {
            (Get-Command Connect-IpcQueue).ParameterSets.Name | Sort-Object | Should -Be @('BoundQueue', 'Exchange', 'Queue')
            { Connect-IpcQueue -Uri $Broker.Uri -Queue q -Subscribe -ErrorAction Stop } | Should -Throw -ErrorId 'AmbiguousParameterSet,PsIpc.Queue.ConnectIpcQueueCommand'
        }

        It 'Ctrl+C stops a connect that waits for a broker' {
            $ps = [powershell]::Create()
            $null = $ps.AddScript("Import-Module '$env:PSIPC_MODULE_PATH'; Connect-IpcQueue -Uri 'amqp://127.0.0.1:$(Get-ClosedPort)/' -Queue q")
            # Without -TimeoutSeconds it retries until a broker answers: stop it once it waits.
            $stop = Stop-WhenWaiting -PowerShell $ps
            $stop.State | Should -Be 'Stopped' -Because 'Ctrl+C ends the wait'
            $stop.Waiters | Should -Be 0 -Because 'the connect no longer waits'
            $ps.Dispose()
        }
    }
}
