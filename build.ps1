<#
.SYNOPSIS
    Builds, documents, tests, benchmarks and demonstrates PsIpc.

.DESCRIPTION
    Run with the pinned PowerShell (a local dotnet tool), from the repository root:

        dotnet tool restore
        dotnet pwsh -NoProfile -File ./build.ps1 [Build|Docs|Test|Bench|Demo ...] [-Configuration Release]

    Build  dotnet build src/PsIpc with the version from PsIpc.psd1, stage output/PsIpc
           (PsIpc.psd1, PsIpc.Format.ps1xml, PsIpc.Types.ps1xml, bin/*.dll, en-US/PsIpc.dll-Help.xml),
           run Docs, and check that the staged module imports.
    Docs   docs/cmdlets/*.md -> output/PsIpc/en-US/PsIpc.dll-Help.xml (platyPS's New-ExternalHelp
           when platyPS is installed, build/ConvertTo-Maml.ps1 otherwise).
    Test   Build, xUnit (tests/PsIpc.Transport.Tests, tests/PsIpc.Tests, tests/PsIpc.Fuzz.Tests), Pester 5.7.1 (tests/Pester)
           in a fresh pwsh; results in output/testresults; the last line is "N passed, N failed[, N skipped]".
    Fuzz   Only tests/PsIpc.Fuzz.Tests: the corpus replayed, then every fuzz target for its share of -Seconds
           (default: PSIPC_FUZZ_SECONDS, else the CI minute). Findings go to output/fuzz-findings.
    Bench  Build, then bench/Invoke-Bench.ps1 -ModulePath output/PsIpc <extra arguments>.
    Soak   Build, then soak/Invoke-Soak.ps1 for -Minutes (default 30): every transport under steady load (the
           RabbitMQ queue too, on a private broker as Test starts one) plus 10k connect/close cycles, working set,
           descriptors and threads of every process sampled each second; writes docs/soak.md and docs/soak.png
           (drawn by soak/SoakPlot with ScottPlot). Fails on descriptor or thread growth or a worker error.
    Demo   Build, then examples/demo.ps1 in a fresh pwsh.
    Package  Build, then output/PsIpc.<version>.nupkg (with LICENSE and CHANGELOG.md), the package that
           Install-PSResource / Save-PSResource take from a folder repository (Register-PSResourceRepository -Uri <folder>).

    Several tasks run in the order given: ./build.ps1 Test Demo. Arguments after the tasks that are
    not task names go to Bench: ./build.ps1 Bench -Quick
#>
[CmdletBinding(PositionalBinding = $false)]
param(
    [Parameter(Position = 0)]
    [ValidateSet('Build', 'Test', 'Docs', 'Bench', 'Demo', 'Fuzz', 'Package', 'Soak')]
    [string[]] $Task = 'Build',

    [string] $Configuration = 'Release',

    # Fuzz: seconds for all fuzz targets together (sets PSIPC_FUZZ_SECONDS).
    [int] $Seconds = 0,

    # Soak: minutes of load (the first tenth, at most 2 minutes, is warm-up).
    [double] $Minutes = 30,

    # More task names, then the arguments passed on to bench/Invoke-Bench.ps1.
    [Parameter(ValueFromRemainingArguments)]
    [string[]] $RemainingArguments = @()
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$RepoRoot = $PSScriptRoot
$Manifest = Join-Path $RepoRoot 'PsIpc.psd1'
$ModuleProject = Join-Path $RepoRoot 'src/PsIpc/PsIpc.csproj'
# The xUnit projects, in the order they run: the transport core, then the module's own C#. Each writes its .trx.
$XUnitProjects = @(
    @{ Name = 'xUnit core'; Project = Join-Path $RepoRoot 'tests/PsIpc.Transport.Tests/PsIpc.Transport.Tests.csproj'; Trx = 'xunit.trx' }
    @{ Name = 'xUnit module'; Project = Join-Path $RepoRoot 'tests/PsIpc.Tests/PsIpc.Tests.csproj'; Trx = 'xunit-module.trx' }
    @{ Name = 'xUnit fuzz'; Project = Join-Path $RepoRoot 'tests/PsIpc.Fuzz.Tests/PsIpc.Fuzz.Tests.csproj'; Trx = 'xunit-fuzz.trx' }
    @{ Name = 'xUnit amqp'; Project = Join-Path $RepoRoot 'tests/PsIpc.Amqp.Tests/PsIpc.Amqp.Tests.csproj'; Trx = 'xunit-amqp.trx' }
)
# RabbitMQ queues (issue 10): the nested module with the queue cmdlets and its engine (bin/amqp/<tfm>/), the tests' broker.
$QueueProject = Join-Path $RepoRoot 'src/PsIpc.Queue/PsIpc.Queue.csproj'
$BrokerModule = Join-Path $RepoRoot 'build/RabbitMqBroker.psm1'
$ModuleOut = Join-Path $RepoRoot 'output/PsIpc'
$TestResults = Join-Path $RepoRoot 'output/testresults'
$HelpFile = Join-Path $ModuleOut 'en-US/PsIpc.dll-Help.xml'
$Version = (Import-PowerShellDataFile -LiteralPath $Manifest).ModuleVersion
$IsCI = [bool]$env:CI -and $env:CI -ne 'false'
# Assemblies that PowerShell itself provides: never staged.
$HostAssemblies = 'System.Management.Automation.dll', 'Microsoft.PowerShell.*.dll', 'Microsoft.Management.Infrastructure*.dll'

$env:DOTNET_NOLOGO = '1'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
if ($IsCI) {
    $PSStyle.OutputRendering = 'PlainText'
    # No build servers left behind to hold the CI's output pipe open.
    $env:MSBUILDDISABLENODEREUSE = '1'
    $env:DOTNET_CLI_USE_MSBUILD_SERVER = '0'
    $env:UseSharedCompilation = 'false'
}

$extra = [System.Collections.Generic.List[string]]::new()
foreach ($arg in $RemainingArguments) {
    if (-not $extra.Count -and $arg -in 'Build', 'Test', 'Docs', 'Bench', 'Demo', 'Fuzz', 'Package', 'Soak') { $Task += $arg } else { $extra.Add($arg) }
}
if ($extra.Count -and $Task -notcontains 'Bench') { throw "Unknown arguments: $($extra -join ' ') (only Bench takes extra arguments)." }

#region helpers

function Write-Step([string] $Text) { Write-Host "==> $Text" -ForegroundColor Cyan }

function Invoke-Native {
    # Runs a program with its output shown; throws on a non-zero exit code unless -AllowFailure,
    # which returns the exit code instead.
    param([string] $FilePath, [string[]] $ArgumentList, [switch] $AllowFailure)
    Write-Host "> $FilePath $($ArgumentList -join ' ')" -ForegroundColor DarkGray
    & $FilePath @ArgumentList | Out-Host
    $code = $LASTEXITCODE
    if ($code -ne 0 -and -not $AllowFailure) { throw "$FilePath exited with code $code." }
    if ($AllowFailure) { $code }
}

function Invoke-Pwsh {
    # Runs a fresh pwsh (the one running this script) with its output going straight to ours.
    # Returns the exit code; kills the process tree after -TimeoutMinutes.
    param([string[]] $ArgumentList, [hashtable] $Environment = @{}, [double] $TimeoutMinutes = 0, [switch] $CloseInput, [string] $Label)
    $exe = [Environment]::ProcessPath
    $psi = [System.Diagnostics.ProcessStartInfo]::new($exe)
    # `dotnet pwsh` runs pwsh.dll under the dotnet host; a normal install runs pwsh itself.
    if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
    foreach ($a in @('-NoProfile', '-NonInteractive') + $ArgumentList) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = [bool]$CloseInput
    $psi.WorkingDirectory = $RepoRoot
    foreach ($key in $Environment.Keys) { $psi.Environment[$key] = [string]$Environment[$key] }
    if ($IsCI) { $psi.Environment['NO_COLOR'] = '1' }
    Write-Host "> pwsh $(if ($Label) { $Label } else { $ArgumentList -join ' ' })" -ForegroundColor DarkGray
    $process = [System.Diagnostics.Process]::Start($psi)
    try {
        if ($CloseInput) { $process.StandardInput.Close() }
        $ms = if ($TimeoutMinutes -gt 0) { [int]($TimeoutMinutes * 60000) } else { -1 }
        if (-not $process.WaitForExit($ms)) {
            Write-Host "Timed out after $TimeoutMinutes minutes: stopping pwsh $($ArgumentList -join ' ')" -ForegroundColor Red
            $process.Kill($true)
            $process.WaitForExit()
            return 124
        }
        $process.WaitForExit()
        $process.ExitCode
    }
    finally { $process.Dispose() }
}

#endregion

#region tasks

$script:Built = $false

function Invoke-Build {
    if ($script:Built) { return }
    Write-Step "Build PsIpc $Version ($Configuration)"
    $buildArgs = @('build', $ModuleProject, '-c', $Configuration, "-p:Version=$Version", '-nologo')
    if ($IsCI) { $buildArgs += '-nodeReuse:false' }
    Invoke-Native dotnet $buildArgs
    $targetDir = @(& dotnet msbuild $ModuleProject -nologo -getProperty:TargetDir "-p:Configuration=$Configuration")[-1].Trim()
    if ($LASTEXITCODE -ne 0 -or -not (Test-Path -LiteralPath (Join-Path $targetDir 'PsIpc.dll'))) {
        throw "Could not find PsIpc.dll in the build output '$targetDir'."
    }

    Write-Step "Stage $ModuleOut"
    if (Test-Path -LiteralPath $ModuleOut) { Remove-Item -LiteralPath $ModuleOut -Recurse -Force }
    $bin = New-Item -ItemType Directory -Force -Path (Join-Path $ModuleOut 'bin')
    Copy-Item -LiteralPath $Manifest -Destination $ModuleOut
    foreach ($data in 'PsIpc.Format.ps1xml', 'PsIpc.Types.ps1xml') {
        $file = Join-Path $RepoRoot "src/PsIpc/$data"
        if (-not (Test-Path -LiteralPath $file)) { throw "Missing $file (PsIpc.psd1 lists it in FormatsToProcess or TypesToProcess)." }
        Copy-Item -LiteralPath $file -Destination $ModuleOut
    }
    Get-ChildItem -LiteralPath $targetDir -File |
        Where-Object { $_.Extension -in '.dll', '.pdb' } |
        Where-Object { $name = $_.Name; -not ($HostAssemblies | Where-Object { $name -like $_ }) } |
        Copy-Item -Destination $bin
    $staged = (Get-ChildItem -LiteralPath $bin -Filter *.dll).Name
    Write-Host "bin: $($staged -join ', ')"
    foreach ($required in 'PsIpc.dll', 'PsIpc.Transport.dll') {
        if ($staged -notcontains $required) { throw "$required was not staged." }
    }
    Invoke-QueueBuild -Bin $bin

    Invoke-Docs

    Write-Step 'Check that the staged module imports'
    $check = Join-Path ([System.IO.Path]::GetTempPath()) "psipc-import-$PID.txt"
    $code = Invoke-Pwsh -CloseInput -Label "-Command { Import-Module $ModuleOut }" -ArgumentList @('-Command', @"
`$ErrorActionPreference = 'Stop'
Import-Module '$($ModuleOut -replace "'", "''")'
(Get-Command -Module PsIpc -CommandType Cmdlet).Name | Sort-Object | Set-Content -LiteralPath '$check'
"@)
    if ($code -ne 0) { throw "Import-Module $ModuleOut failed (exit code $code)." }
    $exported = @(Get-Content -LiteralPath $check)
    Remove-Item -LiteralPath $check
    Write-Host "cmdlets: $($exported -join ', ')"
    $declared = @((Import-PowerShellDataFile -LiteralPath $Manifest).CmdletsToExport)
    foreach ($name in $declared | Where-Object { $_ -notin $exported }) { Write-Warning "PsIpc.psd1 exports $name, but PsIpc.dll has no such cmdlet." }
    foreach ($name in $exported | Where-Object { $_ -notin $declared }) { Write-Warning "$name is not in CmdletsToExport of PsIpc.psd1." }
    $script:Built = $true
}

function Invoke-QueueBuild {
    # The queue cmdlets (bin/PsIpc.Queue.dll, a nested module) and the RabbitMQ engine with its
    # dependencies in bin/amqp/net8.0 (pwsh 7) and bin/amqp/netstandard2.0 (Windows PowerShell 5.1).
    param([string] $Bin)
    $buildArgs = @('build', $QueueProject, '-c', $Configuration, "-p:Version=$Version", '-nologo')
    if ($IsCI) { $buildArgs += '-nodeReuse:false' }
    Invoke-Native dotnet $buildArgs
    $queueOut = Join-Path $RepoRoot "src/PsIpc.Queue/bin/$Configuration/netstandard2.0"
    if (-not (Test-Path -LiteralPath (Join-Path $queueOut 'amqp/net8.0/RabbitMQ.Client.dll'))) { throw "The queue engine is not in $queueOut/amqp." }
    Copy-Item -Path (Join-Path $queueOut 'PsIpc.Queue.dll'), (Join-Path $queueOut 'PsIpc.Queue.pdb') -Destination $Bin
    Copy-Item -LiteralPath (Join-Path $queueOut 'amqp') -Destination $Bin -Recurse
    Write-Host "bin/amqp: $((Get-ChildItem -LiteralPath (Join-Path $Bin 'amqp/net8.0') -Filter *.dll).Name -join ', ')"
}

function Start-QueueTestBroker {
    # A private RabbitMQ broker for the queue tests (build/RabbitMqBroker.psm1), installed with apt-get
    # when missing and running as root; the tests find it through $env:PSIPC_RABBITMQ_STATE. Without one
    # the run fails (the queue tests are never skipped silently): a 'Broker' run with the reason.
    param([System.Collections.Generic.List[object]] $Runs)
    Write-Step 'RabbitMQ: a private broker for the queue tests'
    try {
        Import-Module -Name $BrokerModule -Force
        Install-RabbitMqServer
        $script:TestBroker = Start-RabbitMqBroker -Directory (Join-Path $RepoRoot "output/rabbitmq/test-$PID")
        Write-Host "broker $($script:TestBroker.NodeName) at $($script:TestBroker.Uri) (amqps: $($script:TestBroker.TlsPort))"
        $env:PSIPC_RABBITMQ_STATE = $script:TestBroker.StateFile
        $env:PSIPC_AMQP_URI = $script:TestBroker.Uri   # what the examples of docs/cmdlets/Connect-IpcQueue.md connect to
    }
    catch {
        Write-Host "No RabbitMQ broker for the queue tests: $($_.Exception.Message)" -ForegroundColor Red
        $env:PSIPC_RABBITMQ_STATE = "unavailable: $($_.Exception.Message)"
        $Runs.Add(@{ Name = 'Broker'; ExitCode = 1; Passed = 0; Failed = 0; Skipped = 0; Problem = 'no RabbitMQ broker' })
    }
}

function Stop-QueueTestBroker {
    if (-not $script:TestBroker) { return }
    Write-Step "RabbitMQ: stop $($script:TestBroker.NodeName)"
    # Read back: a test may have restarted the node (a new process id).
    Stop-RabbitMqBroker (Get-RabbitMqBroker -Path $script:TestBroker.StateFile)
    $script:TestBroker = $null
    Remove-Item Env:PSIPC_RABBITMQ_STATE, Env:PSIPC_AMQP_URI -ErrorAction SilentlyContinue
}

function Invoke-Docs {
    Write-Step 'Docs: docs/cmdlets/*.md -> en-US/PsIpc.dll-Help.xml'
    $pages = @(Get-ChildItem -Path (Join-Path $RepoRoot 'docs/cmdlets') -Filter *.md -File -ErrorAction SilentlyContinue)
    if (-not $pages) { Write-Warning 'No pages in docs/cmdlets: the module has no help file.'; return }
    $enUS = Split-Path $HelpFile
    $null = New-Item -ItemType Directory -Force -Path $enUS
    if (Get-Module -ListAvailable -Name platyPS) {
        Import-Module platyPS
        $null = New-ExternalHelp -Path (Join-Path $RepoRoot 'docs/cmdlets') -OutputPath $enUS -Force
        if (-not (Test-Path -LiteralPath $HelpFile)) { throw "New-ExternalHelp did not write $HelpFile (check 'external help file' in the pages' front matter)." }
    }
    else {
        $null = & (Join-Path $RepoRoot 'build/ConvertTo-Maml.ps1') -Path $pages.FullName -OutputPath $HelpFile
    }
    $help = [xml](Get-Content -LiteralPath $HelpFile -Raw)
    $documented = @($help.helpItems.command | ForEach-Object { $_.details.name })
    Write-Host "help: $($documented.Count) cmdlets in $HelpFile"
    foreach ($name in @((Import-PowerShellDataFile -LiteralPath $Manifest).CmdletsToExport) | Where-Object { $_ -notin $documented }) {
        Write-Warning "No help page for $name (docs/cmdlets/$name.md)."
    }
    # Get-Help looks for a cmdlet's help beside its assembly's name: the nested module's cmdlets too.
    Copy-Item -LiteralPath $HelpFile -Destination (Join-Path $enUS 'PsIpc.Queue.dll-Help.xml')
    # Conceptual help (Get-Help about_PsIpc), written as plain text.
    Copy-Item -Path (Join-Path $RepoRoot 'docs/about_*.help.txt') -Destination $enUS
}

function Get-XUnitCount {
    # Counts the results in a VSTest .trx file by outcome.
    param([string] $Trx)
    $doc = [xml](Get-Content -LiteralPath $Trx -Raw)
    $outcomes = @($doc.SelectNodes("//*[local-name()='UnitTestResult']") | ForEach-Object { $_.GetAttribute('outcome') })
    @{
        Passed  = @($outcomes | Where-Object { $_ -eq 'Passed' }).Count
        Skipped = @($outcomes | Where-Object { $_ -in 'NotExecuted', 'Inconclusive' }).Count
        Failed  = @($outcomes | Where-Object { $_ -notin 'Passed', 'NotExecuted', 'Inconclusive' }).Count
    }
}

function Get-XUnitFailure {
    # The failed tests of a VSTest .trx file: name, the head of the message and the lines of the output that
    # name a seed (CsCheck prints the one to replay), so the tail of a CI log says what failed.
    param([string] $Trx)
    $doc = [xml](Get-Content -LiteralPath $Trx -Raw)
    foreach ($result in $doc.SelectNodes("//*[local-name()='UnitTestResult']")) {
        if ($result.GetAttribute('outcome') -in 'Passed', 'NotExecuted', 'Inconclusive') { continue }
        $message = $result.SelectSingleNode(".//*[local-name()='ErrorInfo']/*[local-name()='Message']")
        $stdout = $result.SelectSingleNode(".//*[local-name()='StdOut']")
        $text = if ($message) { $message.InnerText } else { '' }
        if ($text.Length -gt 1500) { $text = $text.Substring(0, 1500) + ' ...' }
        $seeds = if ($stdout) { @($stdout.InnerText -split "`n" | Where-Object { $_ -match '(?i)seed' } | Select-Object -First 3) } else { @() }
        [pscustomobject]@{ Name = $result.GetAttribute('testName'); Message = $text; Seeds = $seeds }
    }
}

function Invoke-Test {
    Invoke-Build
    $null = New-Item -ItemType Directory -Force -Path $TestResults
    Get-ChildItem -LiteralPath $TestResults -File | Where-Object Name -Match '^(xunit.*\.trx|pester-.*)$' | Remove-Item
    $runs = [System.Collections.Generic.List[object]]::new()
    Start-QueueTestBroker -Runs $runs

    foreach ($xunitProject in $XUnitProjects) {
        Write-Step "$($xunitProject.Name): $([System.IO.Path]::GetRelativePath($RepoRoot, (Split-Path $xunitProject.Project)))"
        $trx = Join-Path $TestResults $xunitProject.Trx
        $testArgs = @('test', $xunitProject.Project, '-c', $Configuration, "-p:Version=$Version", '-nologo',
            '--logger', "trx;LogFileName=$($xunitProject.Trx)", '--results-directory', $TestResults,
            '--blame-hang-timeout', '5m', '--blame-hang-dump-type', 'none')
        if ($IsCI) { $testArgs += '-nodeReuse:false' }
        $code = Invoke-Native dotnet $testArgs -AllowFailure
        $xunit = @{ Name = $xunitProject.Name; ExitCode = $code; Passed = 0; Failed = 0; Skipped = 0; Problem = $null }
        if (Test-Path -LiteralPath $trx) {
            $counts = Get-XUnitCount $trx
            foreach ($key in $counts.Keys) { $xunit[$key] = $counts[$key] }
            if ($counts.Failed) { $xunit.Failures = @(Get-XUnitFailure $trx) }
        }
        else { $xunit.Problem = "no results (dotnet test exited with $code)" }
        $runs.Add($xunit)
    }

    Write-Step 'Pester: tests/Pester (fresh pwsh)'
    $minutes = if ($env:PSIPC_PESTER_TIMEOUT_MINUTES) { [double]$env:PSIPC_PESTER_TIMEOUT_MINUTES } else { 30 }
    $code = Invoke-Pwsh -CloseInput -TimeoutMinutes $minutes -Environment @{ PSIPC_MODULE_PATH = $ModuleOut } -ArgumentList @(
        '-File', (Join-Path $RepoRoot 'tests/Invoke-PesterTests.ps1'),
        '-Path', (Join-Path $RepoRoot 'tests/Pester'),
        '-ModulePath', $ModuleOut,
        '-OutputDirectory', $TestResults)
    $pester = @{ Name = 'Pester'; ExitCode = $code; Passed = 0; Failed = 0; Skipped = 0; Problem = $null }
    $summaryFile = Join-Path $TestResults 'pester-summary.json'
    if (Test-Path -LiteralPath $summaryFile) {
        $s = Get-Content -LiteralPath $summaryFile -Raw | ConvertFrom-Json
        $pester.Passed = $s.Passed
        # A failed BeforeAll/AfterAll or a test file that cannot run is a failure too.
        $pester.Failed = $s.Failed + $s.FailedBlocks + $s.FailedContainers
        $pester.Skipped = $s.Skipped + $s.Inconclusive
    }
    else { $pester.Problem = "no results (exit code $code)" }
    $runs.Add($pester)
    Stop-QueueTestBroker

    foreach ($r in $runs) {
        if (-not $r.Problem -and $r.Passed + $r.Failed -eq 0) { $r.Problem = 'ran no test' }
        if (-not $r.Problem -and $r.ExitCode -ne 0 -and $r.Failed -eq 0) { $r.Problem = "exited with $($r.ExitCode) but reported no failure" }
        # A runner that did not run counts as one failure, so the summary agrees with the exit code.
        if ($r.Problem) { $r.Failed += 1 }
    }
    $script:TestRuns = $runs
}

function Invoke-Bench {
    Invoke-Build
    Write-Step "Bench: bench/Invoke-Bench.ps1 $($extra -join ' ')"
    $code = Invoke-Pwsh -Environment @{ PSIPC_MODULE_PATH = $ModuleOut } -ArgumentList (@(
            '-File', (Join-Path $RepoRoot 'bench/Invoke-Bench.ps1'), '-ModulePath', $ModuleOut) + $extra)
    if ($code -ne 0) { throw "bench/Invoke-Bench.ps1 exited with code $code." }
}

function Invoke-Fuzz {
    if ($Seconds -gt 0) { $env:PSIPC_FUZZ_SECONDS = "$Seconds" }
    $total = if ($env:PSIPC_FUZZ_SECONDS) { [int]$env:PSIPC_FUZZ_SECONDS } else { 0 }
    $project = ($XUnitProjects | Where-Object Name -eq 'xUnit fuzz').Project
    Write-Step "Fuzz: tests/PsIpc.Fuzz.Tests, $(if ($total) { "$total s" } else { 'the CI time' }) for all targets"
    # A hang is a test that outlives the whole run by 5 minutes (each target stops at its share of the time).
    $testArgs = @('test', $project, '-c', $Configuration, '-nologo', '--logger', 'console;verbosity=detailed',
        '--blame-hang-timeout', "$([math]::Ceiling($total / 60) + 5)m", '--blame-hang-dump-type', 'none')
    if ($IsCI) { $testArgs += '-nodeReuse:false' }
    Invoke-Native dotnet $testArgs
}

function Invoke-Soak {
    # The long soak (issue 13): soak/Invoke-Soak.ps1 in this process, then docs/soak.md and docs/soak.png.
    Invoke-Build
    $notes = [System.Collections.Generic.List[string]]::new()
    $soakArgs = @{ ModulePath = $ModuleOut; Minutes = $Minutes; OutputDirectory = Join-Path $RepoRoot 'output/soak' }
    Write-Step 'Soak: a private RabbitMQ broker for the queue transport'
    try {
        Import-Module -Name $BrokerModule -Force
        Install-RabbitMqServer
        $script:TestBroker = Start-RabbitMqBroker -Directory (Join-Path $RepoRoot "output/rabbitmq/soak-$PID")
        $soakArgs.AmqpUri = $script:TestBroker.Uri
        # The node's pid is its wrapper script's (a shell of about 2 MiB): sample the Erlang VM (beam.smp) below it.
        # Its command line does not name the node, so a pgrep by node name found nothing and fell back to the script.
        $beam = Get-RabbitMqNodeVmPid $script:TestBroker
        if ($beam -gt 0) { $soakArgs.BrokerPid = $beam }
        else { $notes.Add("The broker's Erlang VM (beam.smp) was not found below pid $($script:TestBroker.NodePid), so its memory was not sampled.") }
    }
    catch {
        Write-Warning "No RabbitMQ broker, the soak goes on without the AMQP transport: $($_.Exception.Message)"
        $notes.Add("No RabbitMQ broker could be started, so the AMQP transport was not soaked: $($_.Exception.Message)")
    }
    Write-Step 'Soak: build soak/SoakPlot (ScottPlot; not part of the module)'
    $plotProject = Join-Path $RepoRoot 'soak/SoakPlot/SoakPlot.csproj'
    Invoke-Native dotnet @('build', $plotProject, '-c', 'Release', '-nologo', '-v', 'q')
    Write-Step "Soak: $Minutes minutes"
    . (Join-Path $RepoRoot 'soak/SoakReport.ps1')
    $summary = & (Join-Path $RepoRoot 'soak/Invoke-Soak.ps1') @soakArgs
    Stop-QueueTestBroker
    $docs = Join-Path $RepoRoot 'docs'
    $plotDll = Join-Path $RepoRoot 'soak/SoakPlot/bin/Release/net10.0/SoakPlot.dll'
    $title = 'PsIpc soak: {0:0.#} minutes, {1:yyyy-MM-dd}' -f ($summary.LoadSeconds / 60), [DateTime]::UtcNow
    Invoke-Native dotnet @($plotDll, (Join-Path $soakArgs.OutputDirectory 'samples.csv'), (Join-Path $docs 'soak.png'), "$($summary.WarmupSeconds)", $title)
    ConvertTo-SoakMarkdown -Summary $summary -Notes $notes | Set-Content -LiteralPath (Join-Path $docs 'soak.md') -Encoding utf8 -NoNewline
    Write-Host "Wrote docs/soak.md and docs/soak.png"
    if (-not $summary.Passed) { throw "The soak found growth or errors: $($summary.Problems -join '; ')" }
}

function Invoke-Demo {
    Invoke-Build
    Write-Step 'Demo: examples/demo.ps1 (fresh pwsh)'
    $code = Invoke-Pwsh -Environment @{ PSIPC_MODULE_PATH = $ModuleOut } -ArgumentList @('-File', (Join-Path $RepoRoot 'examples/demo.ps1'))
    if ($code -ne 0) { throw "examples/demo.ps1 exited with code $code." }
}

function Invoke-Package {
    # The staged module as a NuGet package, the form PSResourceGet installs from a folder or a feed.
    Invoke-Build
    $outDir = Split-Path $ModuleOut
    $nupkg = Join-Path $outDir "PsIpc.$Version.nupkg"
    Write-Step "Package: $([System.IO.Path]::GetRelativePath($RepoRoot, $nupkg))"
    foreach ($file in 'LICENSE', 'CHANGELOG.md') { Copy-Item -LiteralPath (Join-Path $RepoRoot $file) -Destination $ModuleOut }
    $null = Test-ModuleManifest -Path (Join-Path $ModuleOut 'PsIpc.psd1') -ErrorAction Stop
    Get-ChildItem -LiteralPath $outDir -Filter 'PsIpc.*.nupkg' -File | Remove-Item
    Import-Module -Name Microsoft.PowerShell.PSResourceGet -ErrorAction Stop   # ships with PowerShell 7.4 and later
    Compress-PSResource -Path $ModuleOut -DestinationPath $outDir
    if (-not (Test-Path -LiteralPath $nupkg)) { throw "Compress-PSResource did not write $nupkg." }
    # The package must hold the whole module: the nested queue module and the engine's dependency folders too.
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    $zip = [System.IO.Compression.ZipFile]::OpenRead($nupkg)
    try { $entries = @($zip.Entries.FullName) } finally { $zip.Dispose() }
    $required = 'PsIpc.psd1', 'PsIpc.Format.ps1xml', 'PsIpc.Types.ps1xml', 'LICENSE', 'CHANGELOG.md', 'bin/PsIpc.dll', 'bin/PsIpc.Transport.dll',
        'bin/PsIpc.Queue.dll', 'bin/amqp/net8.0/PsIpc.Amqp.dll', 'bin/amqp/net8.0/RabbitMQ.Client.dll', 'bin/amqp/netstandard2.0/RabbitMQ.Client.dll',
        'en-US/PsIpc.dll-Help.xml', 'en-US/PsIpc.Queue.dll-Help.xml', 'en-US/about_PsIpc.help.txt'
    $missing = @($required | Where-Object { $_ -notin $entries })
    if ($missing) { throw "$nupkg lacks $($missing -join ', ')." }
    Write-Host "$nupkg ($($entries.Count) entries, $([math]::Round((Get-Item -LiteralPath $nupkg).Length / 1KB)) KiB)"
}

#endregion

$script:TestRuns = $null
$script:TestBroker = $null
try {
    Push-Location -LiteralPath $RepoRoot
    foreach ($t in $Task) {
        switch ($t) {
            'Build' { Invoke-Build }
            'Docs' { Invoke-Docs }
            'Test' { Invoke-Test }
            'Bench' { Invoke-Bench }
            'Demo' { Invoke-Demo }
            'Fuzz' { Invoke-Fuzz }
            'Package' { Invoke-Package }
            'Soak' { Invoke-Soak }
        }
    }
}
catch {
    Write-Host "build.ps1 $($Task -join ' ') failed: $($_.Exception.Message)" -ForegroundColor Red
    Write-Host $_.ScriptStackTrace -ForegroundColor DarkGray
    exit 1
}
finally {
    Stop-QueueTestBroker   # when a task failed half-way
    Pop-Location
}

if ($script:TestRuns) {
    $runs = $script:TestRuns
    Write-Host ''
    foreach ($r in $runs) {
        if (-not $r.ContainsKey('Failures')) { continue }
        foreach ($f in $r.Failures) {
            Write-Host "[-] $($r.Name): $($f.Name)"
            foreach ($line in @($f.Message -split "`n") + $f.Seeds) { Write-Host "      $($line.TrimEnd())" }
        }
    }
    foreach ($r in $runs) {
        $note = if ($r.Problem) { "  <- $($r.Problem), counted as 1 failed" } else { '' }
        Write-Host ("  {0,-12} passed {1}, failed {2}, skipped {3}{4}" -f $r.Name, $r.Passed, $r.Failed, $r.Skipped, $note)
    }
    $passed = $failed = $skipped = 0
    foreach ($r in $runs) { $passed += $r.Passed; $failed += $r.Failed; $skipped += $r.Skipped }
    $line = "$passed passed, $failed failed"
    if ($skipped) { $line += ", $skipped skipped" }
    Write-Host $line
    if ($failed) { exit 1 }
}
exit 0
