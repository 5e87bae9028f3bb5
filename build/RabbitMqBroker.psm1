<#
.SYNOPSIS
    A private RabbitMQ broker for the tests: Debian's rabbitmq-server, run as a plain process on its
    own ports, data directory, Erlang cookie and epmd, never the system service.

.DESCRIPTION
    build.ps1 Test starts one before the tests and stops it afterwards; the queue tests find it through
    $env:PSIPC_RABBITMQ_STATE (the broker.json this module writes), and can restart it with
    Restart-RabbitMqBroker from any process.

        Install-RabbitMqServer          apt-get install rabbitmq-server python3-pika when absent (root only)
        Start-RabbitMqBroker -Directory output/rabbitmq/<name>     returns the broker (also in broker.json)
        Restart-RabbitMqBroker $broker  stops the node and starts it again on the same ports and data
        Stop-RabbitMqBroker $broker     stops the node and its epmd
        Invoke-RabbitMqCtl $broker list_queues name messages
        Get-RabbitMqBroker -Path broker.json   reads a broker another process started
        Get-RabbitMqNodeVmPid $broker   the node's Erlang VM (beam.smp), not its wrapper script

    Why a plain process: the package's wrapper script (/usr/sbin/rabbitmq-server) runs the node as the
    rabbitmq user with the system's data, cookie and port 5672. The real script behind it
    (/usr/lib/rabbitmq/bin/rabbitmq-server) runs as any user when every RABBITMQ_* location points at
    a folder of ours; HOME points at a folder holding our own .erlang.cookie, and our own epmd on its
    own port (ERL_EPMD_PORT) keeps the node away from any other Erlang node on the machine.
#>

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$script:ServerScript = '/usr/lib/rabbitmq/bin/rabbitmq-server'
$script:CtlScript = '/usr/lib/rabbitmq/bin/rabbitmqctl'
$script:Epmd = '/usr/lib/erlang/bin/epmd'

function Test-RabbitMqServer {
    # Whether Debian's rabbitmq-server (and Erlang's epmd) are installed.
    (Test-Path -LiteralPath $script:ServerScript) -and (Test-Path -LiteralPath $script:Epmd)
}

function Test-Root {
    try { (& id -u 2>$null) -eq '0' } catch { $false }
}

function Install-RabbitMqServer {
    <#
    .SYNOPSIS
        Installs Debian's rabbitmq-server (and python3-pika, the interop test's peer) with apt-get when
        rabbitmq-server is missing. Only as root; otherwise fails with what to run.
    #>
    [CmdletBinding()]
    param()
    if (Test-RabbitMqServer) { return }
    if (-not (Get-Command -Name apt-get -CommandType Application -ErrorAction SilentlyContinue)) {
        throw "rabbitmq-server is not installed and this system has no apt-get. Install RabbitMQ so that $script:ServerScript exists (Debian/Ubuntu: apt-get install rabbitmq-server)."
    }
    if (-not (Test-Root)) {
        throw "rabbitmq-server is not installed. As root, run: apt-get update && apt-get install -y --no-install-recommends rabbitmq-server python3-pika (the tests start their own broker from it; the system service is not used)."
    }
    Write-Host 'rabbitmq-server is missing: installing it with apt-get (root).'
    $env:DEBIAN_FRONTEND = 'noninteractive'
    $packages = @('install', '-y', '--no-install-recommends', 'rabbitmq-server', 'python3-pika')
    & apt-get @packages 2>&1 | Out-Host
    if ($LASTEXITCODE -ne 0) {
        # A fresh machine has no package lists yet.
        & apt-get update 2>&1 | Out-Host
        & apt-get @packages 2>&1 | Out-Host
    }
    if ($LASTEXITCODE -ne 0 -or -not (Test-RabbitMqServer)) { throw "apt-get could not install rabbitmq-server (exit code $LASTEXITCODE)." }
}

function Get-FreeTcpPort {
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

function ConvertTo-ShellWord([string] $Text) { "'" + ($Text -replace "'", "'\''") + "'" }

function Start-Detached {
    # Starts a program with its output appended to a log file, detached from our standard handles (a
    # broker that outlives this process must not hold the CI's output pipe open). Returns the pid, which
    # is the program's own: the shell execs it.
    param([string] $FilePath, [string[]] $ArgumentList = @(), [hashtable] $Environment = @{}, [string] $LogFile)
    $command = 'exec ' + ((@($FilePath) + $ArgumentList | ForEach-Object { ConvertTo-ShellWord $_ }) -join ' ') +
        ' </dev/null >>' + (ConvertTo-ShellWord $LogFile) + ' 2>&1'
    $psi = [System.Diagnostics.ProcessStartInfo]::new('/bin/sh')
    $psi.ArgumentList.Add('-c')
    $psi.ArgumentList.Add($command)
    $psi.UseShellExecute = $false
    foreach ($key in $Environment.Keys) { $psi.Environment[$key] = [string]$Environment[$key] }
    $process = [System.Diagnostics.Process]::Start($psi)
    $id = $process.Id
    $process.Dispose()
    $id
}

function Test-ProcessAlive([int] $Id) {
    if ($Id -le 0) { return $false }
    try {
        $p = [System.Diagnostics.Process]::GetProcessById($Id)
        try { -not $p.HasExited } finally { $p.Dispose() }
    }
    catch { $false }
}

function Stop-ProcessTree {
    # SIGTERM (the Erlang VM shuts down cleanly on it), then SIGKILL after the grace period.
    param([int] $Id, [double] $GraceSeconds = 20)
    if (-not (Test-ProcessAlive $Id)) { return }
    & kill -TERM $Id 2>$null
    $until = [DateTime]::UtcNow.AddSeconds($GraceSeconds)
    $p = $null
    try { $p = [System.Diagnostics.Process]::GetProcessById($Id) } catch { return }
    try {
        $left = [int][Math]::Max(0, ($until - [DateTime]::UtcNow).TotalMilliseconds)
        if (-not $p.WaitForExit($left)) {
            $p.Kill($true)
            $null = $p.WaitForExit(10000)
        }
    }
    catch { }
    finally { $p.Dispose() }
}

function Test-AmqpReady {
    # True when the port answers the AMQP 0-9-1 protocol header with a method frame (connection.start),
    # which the node sends only once it accepts clients.
    param([int] $Port)
    $client = [System.Net.Sockets.TcpClient]::new()
    try {
        if (-not $client.ConnectAsync('127.0.0.1', $Port).Wait(1000)) { return $false }
        $stream = $client.GetStream()
        $stream.ReadTimeout = 2000
        $header = [byte[]](0x41, 0x4D, 0x51, 0x50, 0, 0, 9, 1)
        $stream.Write($header, 0, $header.Length)
        $stream.ReadByte() -eq 1
    }
    catch { $false }
    finally { $client.Dispose() }
}

function New-BrokerCertificate {
    # A self-signed certificate for localhost and 127.0.0.1, as PEM files the node's TLS listener reads.
    param([string] $Directory)
    $rsa = [System.Security.Cryptography.RSA]::Create(2048)
    try {
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=localhost', $rsa,
            [System.Security.Cryptography.HashAlgorithmName]::SHA256, [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
        $san = [System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder]::new()
        $san.AddDnsName('localhost')
        $san.AddIpAddress([System.Net.IPAddress]::Loopback)
        $request.CertificateExtensions.Add($san.Build())
        $certificate = $request.CreateSelfSigned([DateTimeOffset]::UtcNow.AddDays(-1), [DateTimeOffset]::UtcNow.AddDays(30))
        try {
            $certFile = Join-Path $Directory 'server.pem'
            $keyFile = Join-Path $Directory 'server.key'
            Set-Content -LiteralPath $certFile -Value $certificate.ExportCertificatePem() -NoNewline
            Set-Content -LiteralPath $keyFile -Value $rsa.ExportPkcs8PrivateKeyPem() -NoNewline
            [System.IO.File]::SetUnixFileMode($keyFile, [System.IO.UnixFileMode]'UserRead, UserWrite')
            @{ CertFile = $certFile; KeyFile = $keyFile; Thumbprint = $certificate.Thumbprint }
        }
        finally { $certificate.Dispose() }
    }
    finally { $rsa.Dispose() }
}

function Save-Broker($Broker) {
    $Broker | ConvertTo-Json -Depth 4 | Set-Content -LiteralPath $Broker.StateFile -Encoding utf8
}

function Get-RabbitMqBroker {
    <#
    .SYNOPSIS
        Reads the broker.json of a broker started by Start-RabbitMqBroker (in any process).
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory)] [string] $Path)
    $broker = Get-Content -LiteralPath $Path -Raw | ConvertFrom-Json
    $environment = @{}
    foreach ($p in $broker.Environment.PSObject.Properties) { $environment[$p.Name] = $p.Value }
    $broker.Environment = $environment
    $broker
}

function Start-BrokerNode($Broker) {
    # Starts the node of a prepared broker and waits until it answers AMQP.
    $log = Join-Path $Broker.Directory 'node.out'
    $Broker.NodePid = Start-Detached -FilePath $script:ServerScript -Environment $Broker.Environment -LogFile $log
    Save-Broker $Broker
    $until = [DateTime]::UtcNow.AddSeconds($Broker.StartTimeoutSeconds)
    while (-not (Test-AmqpReady -Port $Broker.Port)) {
        if (-not (Test-ProcessAlive $Broker.NodePid)) {
            $tail = if (Test-Path -LiteralPath $log) { (Get-Content -LiteralPath $log -Tail 30) -join "`n" } else { '' }
            throw "rabbitmq-server ($($Broker.NodeName)) exited while starting. The end of ${log}:`n$tail"
        }
        if ([DateTime]::UtcNow -gt $until) {
            throw "rabbitmq-server ($($Broker.NodeName)) did not answer AMQP on port $($Broker.Port) within $($Broker.StartTimeoutSeconds) s; see $log and $($Broker.Environment.RABBITMQ_LOG_BASE)."
        }
        Start-Sleep -Milliseconds 200   # polling a port that is not open yet: nothing to wait on
    }
}

function Start-RabbitMqBroker {
    <#
    .SYNOPSIS
        Starts a private broker in -Directory and returns it: NodeName, Port (amqp, 127.0.0.1), TlsPort
        (amqps, self-signed certificate for localhost; its thumbprint in CertificateThumbprint), Uri,
        TlsUri, StateFile. User guest, password guest (loopback only, RabbitMQ's default).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)] [string] $Directory,
        [double] $StartTimeoutSeconds = 180
    )
    if (-not (Test-RabbitMqServer)) { throw "rabbitmq-server is not installed ($script:ServerScript). Run Install-RabbitMqServer as root, or: apt-get install rabbitmq-server" }
    $Directory = [System.IO.Path]::GetFullPath($Directory)
    if (Test-Path -LiteralPath (Join-Path $Directory 'broker.json')) {
        # A broker a killed run left behind.
        try { Stop-RabbitMqBroker -Broker (Get-RabbitMqBroker -Path (Join-Path $Directory 'broker.json')) } catch { }
    }
    if (Test-Path -LiteralPath $Directory) { Remove-Item -LiteralPath $Directory -Recurse -Force }
    $home_ = New-Item -ItemType Directory -Force -Path (Join-Path $Directory 'home')
    $null = New-Item -ItemType Directory -Force -Path (Join-Path $Directory 'mnesia'), (Join-Path $Directory 'log')

    # Node names are per machine (epmd is ours, but keep them unique anyway for logs).
    $node = 'psipc' + [guid]::NewGuid().ToString('N').Substring(0, 8)
    $cookieFile = Join-Path $home_ '.erlang.cookie'
    Set-Content -LiteralPath $cookieFile -Value ([guid]::NewGuid().ToString('N') + [guid]::NewGuid().ToString('N')).ToUpperInvariant() -NoNewline
    [System.IO.File]::SetUnixFileMode($cookieFile, [System.IO.UnixFileMode]::UserRead)

    $port = Get-FreeTcpPort
    $tlsPort = Get-FreeTcpPort
    $distPort = Get-FreeTcpPort
    $epmdPort = Get-FreeTcpPort
    $cert = New-BrokerCertificate -Directory $Directory
    $config = Join-Path $Directory 'rabbitmq.conf'
    Set-Content -LiteralPath $config -Encoding utf8 -Value @"
listeners.tcp.1 = 127.0.0.1:$port
listeners.ssl.1 = 127.0.0.1:$tlsPort
ssl_options.certfile = $($cert.CertFile)
ssl_options.keyfile = $($cert.KeyFile)
ssl_options.cacertfile = $($cert.CertFile)
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
log.console = false
log.file.level = warning
"@
    Set-Content -LiteralPath (Join-Path $Directory 'enabled_plugins') -Value '[].' -Encoding ascii

    $environment = @{
        HOME                                = $home_.FullName
        ERL_EPMD_PORT                       = "$epmdPort"
        RABBITMQ_NODENAME                   = "$node@localhost"
        RABBITMQ_NODE_IP_ADDRESS            = '127.0.0.1'
        RABBITMQ_NODE_PORT                  = "$port"
        RABBITMQ_DIST_PORT                  = "$distPort"
        RABBITMQ_MNESIA_BASE                = Join-Path $Directory 'mnesia'
        RABBITMQ_LOG_BASE                   = Join-Path $Directory 'log'
        RABBITMQ_CONFIG_FILE                = $config
        RABBITMQ_ADVANCED_CONFIG_FILE       = Join-Path $Directory 'advanced.config'
        RABBITMQ_CONF_ENV_FILE              = Join-Path $Directory 'rabbitmq-env.conf'
        RABBITMQ_ENABLED_PLUGINS_FILE       = Join-Path $Directory 'enabled_plugins'
        RABBITMQ_PLUGINS_EXPAND_DIR         = Join-Path $Directory 'plugins-expand'
        RABBITMQ_FEATURE_FLAGS_FILE         = Join-Path $Directory 'feature_flags'
        RABBITMQ_PID_FILE                   = Join-Path $Directory 'node.pid'
        # No busy-waiting schedulers: the node shares small CI machines with the builds and tests.
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS = "+sbwt none +sbwtdcpu none +sbwtdio none"
    }
    $broker = [pscustomobject]@{
        NodeName              = "$node@localhost"
        Directory             = $Directory
        StateFile             = Join-Path $Directory 'broker.json'
        Port                  = $port
        TlsPort               = $tlsPort
        Uri                   = "amqp://127.0.0.1:$port/"
        TlsUri                = "amqps://localhost:$tlsPort/"
        CertificateThumbprint = $cert.Thumbprint
        UserName              = 'guest'
        Password              = 'guest'
        Environment           = $environment
        EpmdPid               = 0
        NodePid               = 0
        StartTimeoutSeconds   = $StartTimeoutSeconds
    }
    $broker.EpmdPid = Start-Detached -FilePath $script:Epmd -ArgumentList @('-port', "$epmdPort", '-address', '127.0.0.1') `
        -Environment $environment -LogFile (Join-Path $Directory 'epmd.out')
    try { Start-BrokerNode $broker }
    catch {
        Stop-RabbitMqBroker -Broker $broker
        throw
    }
    $broker
}

function Stop-RabbitMqBroker {
    <#
    .SYNOPSIS
        Stops the node (SIGTERM: a clean shutdown that keeps durable queues) and its epmd. Idempotent.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)] $Broker, [switch] $NodeOnly)
    Stop-ProcessTree -Id $Broker.NodePid
    $Broker.NodePid = 0
    if (-not $NodeOnly) {
        Stop-ProcessTree -Id $Broker.EpmdPid -GraceSeconds 2
        $Broker.EpmdPid = 0
    }
    if (Test-Path -LiteralPath $Broker.Directory) { Save-Broker $Broker }
}

function Restart-RabbitMqBroker {
    <#
    .SYNOPSIS
        Stops the node and starts it again on the same ports with the same data: durable queues and
        persistent messages survive, every client connection is dropped. Returns when it answers AMQP.
        -WhileStopped runs between the stop and the start (clients then find no broker at all).
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)] $Broker, [scriptblock] $WhileStopped)
    Stop-RabbitMqBroker -Broker $Broker -NodeOnly
    if ($WhileStopped) { & $WhileStopped }
    Start-BrokerNode $Broker
}

function Get-RabbitMqNodeVmPid {
    <#
    .SYNOPSIS
        The process id of the broker's Erlang VM (beam.smp), 0 when it is not running. NodePid is the pid of the
        rabbitmq-server shell script (about 2 MiB), which starts the VM as its child through erl and erlexec. The
        VM's command line does not name the node (RabbitMQ 3.9+ starts distribution from RABBITMQ_NODENAME at
        boot), so it is found by the pid file the node writes (RABBITMQ_PID_FILE), else as the script's child.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)] $Broker)
    function Test-Beam([int] $Id) {
        $comm = "/proc/$Id/comm"
        $Id -gt 0 -and (Test-Path -LiteralPath $comm) -and ((Get-Content -LiteralPath $comm -ErrorAction SilentlyContinue) -eq 'beam.smp')
    }
    $pidFile = $Broker.Environment['RABBITMQ_PID_FILE']
    if ($pidFile -and (Test-Path -LiteralPath $pidFile)) {
        $written = 0
        if ([int]::TryParse((Get-Content -LiteralPath $pidFile -Raw).Trim(), [ref] $written) -and (Test-Beam $written)) { return $written }
    }
    if ($Broker.NodePid -gt 0) {
        foreach ($child in @(& pgrep -P $Broker.NodePid -x beam.smp 2>$null)) {
            if (Test-Beam ([int]$child)) { return [int]$child }
        }
    }
    0
}

function Invoke-RabbitMqCtl {
    <#
    .SYNOPSIS
        Runs rabbitmqctl against the broker (its node name, cookie and epmd); returns its output lines.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)] $Broker, [Parameter(ValueFromRemainingArguments)] [string[]] $ArgumentList)
    $saved = @{}
    foreach ($key in 'HOME', 'ERL_EPMD_PORT', 'RABBITMQ_NODENAME') {
        $saved[$key] = [Environment]::GetEnvironmentVariable($key)
        [Environment]::SetEnvironmentVariable($key, $Broker.Environment[$key])
    }
    try {
        $output = & $script:CtlScript -n $Broker.NodeName -q @ArgumentList 2>&1
        if ($LASTEXITCODE -ne 0) { throw "rabbitmqctl $($ArgumentList -join ' ') failed ($LASTEXITCODE): $($output -join "`n")" }
        $output | ForEach-Object { "$_" }
    }
    finally {
        foreach ($key in $saved.Keys) { [Environment]::SetEnvironmentVariable($key, $saved[$key]) }
    }
}

Export-ModuleMember -Function Install-RabbitMqServer, Test-RabbitMqServer, Start-RabbitMqBroker, Stop-RabbitMqBroker,
    Restart-RabbitMqBroker, Invoke-RabbitMqCtl, Get-RabbitMqBroker, Get-RabbitMqNodeVmPid, Test-AmqpReady
