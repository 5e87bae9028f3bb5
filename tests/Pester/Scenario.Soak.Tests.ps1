BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    # The one-minute soak (issue 13): every transport under steady load plus a connect/close churn, in 13
    # (14 with RabbitMQ) pwsh processes sampled each second; `./build.ps1 Soak -Minutes 30` is the long one.
    # It writes only to TestDrive: docs/soak.md and docs/soak.png belong to the long run.
    $script:Docs = Join-Path $RepoRoot 'docs/soak.md'
    $script:DocsBefore = if (Test-Path -LiteralPath $Docs) { (Get-Item -LiteralPath $Docs).LastWriteTimeUtc } else { $null }
    $soakArgs = @{
        ModulePath      = $PsIpcModulePath
        Minutes         = 1
        WarmupSeconds   = 15
        ChurnCycles     = 3000   # as many as the minute allows, paced to 50 a second
        OutputDirectory = Join-Path $TestDrive 'soak'
    }
    # The RabbitMQ queue too, when build.ps1 Test started its broker (a hand run without one soaks the rest).
    if ($env:PSIPC_RABBITMQ_STATE -and (Test-Path -LiteralPath $env:PSIPC_RABBITMQ_STATE)) {
        Import-Module -Name (Join-Path $RepoRoot 'build/RabbitMqBroker.psm1') -Force
        $broker = Get-RabbitMqBroker -Path $env:PSIPC_RABBITMQ_STATE
        if (Test-AmqpReady -Port $broker.Port) {
            $soakArgs.AmqpUri = $broker.Uri
            $soakArgs.BrokerPid = $broker.NodePid
        }
    }
    $script:Summary = & (Join-Path $RepoRoot 'soak/Invoke-Soak.ps1') @soakArgs
    $script:Clients = @($Summary.Workers | Where-Object role -eq 'Client')
}

AfterAll {
    Clear-TestState
}

Describe 'The one-minute soak' {
    It 'kept every transport busy: each client moved messages and got every echo, no worker reported an error' {
        $Clients.Count | Should -Be $Summary.Transports.Count
        foreach ($c in $Clients) {
            $moved = if ($c.transport -eq 'Segment') { $c.reads } else { $c.sent }
            $moved | Should -BeGreaterThan 0 -Because "the $($c.transport) client must have done something"
            if ($c.transport -in 'Pipe', 'Tcp', 'Unix') { $c.received | Should -Be $c.sent -Because "every $($c.transport) request is echoed" }
        }
        foreach ($s in $Summary.Workers | Where-Object { $_.role -eq 'Server' -and $_.transport -in 'Queue', 'Amqp' }) {
            $producer = $Clients | Where-Object transport -eq $s.transport
            $s.received | Should -Be $producer.sent -Because "the $($s.transport) server receives everything its producer sent"
        }
        @($Summary.Workers | Where-Object errors -gt 0 | ForEach-Object { "$($_.label): $($_.firstErrors -join ' | ')" }) | Should -BeNullOrEmpty
    }

    It 'churned every kind of connection while the load ran' {
        $churn = $Summary.Workers | Where-Object role -eq 'Churn'
        Write-Host "churn: $($churn.cycles) connect/close cycles in $($churn.seconds) s"
        foreach ($kind in 'Pipe', 'Tcp', 'Unix', 'Udp', 'Segment', 'Queue') {
            $churn.perKind.$kind | Should -BeGreaterThan 0 -Because "$kind connections must have come and gone"
        }
    }

    It 'leaked no descriptor and no thread in any PsIpc process, from the end of the warm-up to the end' {
        $mine = @($Summary.Processes | Where-Object PsIpc)
        $mine.Count | Should -Be ($Summary.Workers.Count) -Because 'every worker was sampled after its warm-up'
        foreach ($p in $mine) {
            Write-Host ('{0,-15} fds {1} -> {2}, threads {3} -> {4}, working set {5} -> {6} MiB' -f $p.Label, $p.FdsWarmup, $p.FdsEnd, $p.ThreadsWarmup, $p.ThreadsEnd, $p.RssWarmupMiB, $p.RssEndMiB)
            $p.FdGrowth | Should -Be 0 -Because "$($p.Label) held at most $($p.FdsWarmup) descriptors after the warm-up"
            $p.ThreadGrowth | Should -BeLessOrEqual 10 -Because "$($p.Label) ran at most $($p.ThreadsWarmup) threads after the warm-up"
        }
        $Summary.Problems | Should -BeNullOrEmpty
    }

    It 'wrote its samples to its own directory, and nothing to docs/' {
        Join-Path $TestDrive 'soak/samples.csv' | Should -Exist
        $after = if (Test-Path -LiteralPath $Docs) { (Get-Item -LiteralPath $Docs).LastWriteTimeUtc } else { $null }
        $after | Should -Be $DocsBefore
    }
}
