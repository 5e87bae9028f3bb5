<#
    Helpers for the RabbitMQ queue tests, on top of common.ps1 and TestHelpers.ps1:

        BeforeAll {
            . $PSScriptRoot/common.ps1
            . $PSScriptRoot/TestHelpers.ps1
            . $PSScriptRoot/QueueHelpers.ps1
            $Broker = Get-QueueTestBroker
        }

        Get-QueueTestBroker   the broker build.ps1 Test started ($env:PSIPC_RABBITMQ_STATE); by hand, a dev
                              broker in output/rabbitmq/dev, started once and left running for the next run.
                              No broker is a failure, never a skip.
        New-TestQueueName     a unique queue or exchange name
        Get-QueueDepth        how many messages wait in a queue (rabbitmqctl-free: a passive declare)
        Get-PikaPython        Debian's python3 with python3-pika, or $null
        Start-PikaPeer        a python3 running tests/Pester/queue_peer.py with arguments

    Broker control (restart, rabbitmqctl) comes from build/RabbitMqBroker.psm1, imported here.
#>

Import-Module -Name (Join-Path $PSScriptRoot '../../build/RabbitMqBroker.psm1') -Force
$script:QueueTestsInCI = [bool]$env:CI -and $env:CI -ne 'false'

function Get-QueueTestBroker {
    [CmdletBinding()]
    param()
    $state = $env:PSIPC_RABBITMQ_STATE
    if ($state -like 'unavailable:*') { throw "No RabbitMQ broker for the queue tests: $($state.Substring(12).Trim())" }
    if (-not $state) {
        # By hand (tests/Invoke-PesterTests.ps1 without build.ps1 Test): one dev broker, reused.
        $dir = Join-Path $RepoRoot 'output/rabbitmq/dev'
        $state = Join-Path $dir 'broker.json'
        $alive = (Test-Path -LiteralPath $state) -and (Test-AmqpReady -Port (Get-RabbitMqBroker -Path $state).Port)
        if (-not $alive) {
            Install-RabbitMqServer
            Write-Host "Starting a dev RabbitMQ broker in $dir (left running; stop it with: Import-Module ./build/RabbitMqBroker.psm1; Stop-RabbitMqBroker (Get-RabbitMqBroker -Path $state))"
            $null = Start-RabbitMqBroker -Directory $dir
        }
        $env:PSIPC_RABBITMQ_STATE = $state
    }
    $broker = Get-RabbitMqBroker -Path $state
    $env:PSIPC_AMQP_URI = $broker.Uri   # the doc examples' broker
    $broker | Add-Member -NotePropertyName Credential -NotePropertyValue ([pscredential]::new($broker.UserName, (ConvertTo-SecureString $broker.Password -AsPlainText -Force))) -PassThru
}

function New-TestQueueName {
    param([string] $Prefix = 'q')
    '{0}-{1}' -f $Prefix, [guid]::NewGuid().ToString('N').Substring(0, 10)
}

function Get-QueueDepth {
    # Messages ready in the queue (not those a consumer holds unacknowledged).
    param([Parameter(Mandatory)] $Broker, [Parameter(Mandatory)] [string] $Queue)
    $line = Invoke-RabbitMqCtl $Broker list_queues name messages_ready --no-table-headers |
        Where-Object { ($_ -split "`t")[0] -eq $Queue }
    if (-not $line) { return $null }
    [int](($line -split "`t")[1])
}

function Get-PikaPython {
    # python3-pika is a Debian package: it belongs to /usr/bin/python3, which may not be the python3 first on PATH.
    foreach ($candidate in '/usr/bin/python3', (Get-Command -Name python3 -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1).Source) {
        if (-not $candidate -or -not (Test-Path -LiteralPath $candidate)) { continue }
        & $candidate -c 'import pika' 2>$null
        if ($LASTEXITCODE -eq 0) { return $candidate }
    }
    $null
}

function Start-PikaPeer {
    <#
    .SYNOPSIS
        Runs tests/Pester/queue_peer.py (publish or consume with pika) with the given arguments; output
        redirected, remembered for Clear-TestState.
    #>
    param([Parameter(Mandatory)] [string] $Python, [Parameter(Mandatory)] [string[]] $ArgumentList)
    $psi = [System.Diagnostics.ProcessStartInfo]::new($Python)
    $psi.ArgumentList.Add('-u')
    $psi.ArgumentList.Add((Join-Path $PSScriptRoot 'queue_peer.py'))
    foreach ($a in $ArgumentList) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $process = [System.Diagnostics.Process]::Start($psi)
    $process.StandardInput.Close()
    $process | Add-Member -NotePropertyName StdErrTask -NotePropertyValue $process.StandardError.ReadToEndAsync()
    $process | Register-TestProcess
}
