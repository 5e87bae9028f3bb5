<#
.SYNOPSIS
    Runs the Pester tests (Pester 5.7.1 from the NuGet cache) against the staged module.

.DESCRIPTION
    build.ps1 Test runs this in a fresh pwsh:
        dotnet pwsh -NoProfile -NonInteractive -File tests/Invoke-PesterTests.ps1 -ModulePath output/PsIpc
    It can also be run by hand, with filters, after `./build.ps1 Build`.

    Writes pester-nunit.xml (NUnit 2.5), pester-junit.xml and pester-summary.json (the counts from
    Pester's result object) to -OutputDirectory. Exits 0 only when Pester ran at least one test and
    nothing failed (tests, BeforeAll/AfterAll blocks, or test files that could not be run).

.EXAMPLE
    dotnet pwsh -NoProfile -File tests/Invoke-PesterTests.ps1 -FullNameFilter '*Receive-IpcMessage*' -Output Detailed
#>
[CmdletBinding()]
param(
    # Test files or folders.
    [string[]] $Path = (Join-Path $PSScriptRoot 'Pester'),
    # The staged module the tests import (exported to the tests as $env:PSIPC_MODULE_PATH).
    [string] $ModulePath = $(if ($env:PSIPC_MODULE_PATH) { $env:PSIPC_MODULE_PATH } else { Join-Path $PSScriptRoot '../output/PsIpc' }),
    [string] $OutputDirectory = (Join-Path $PSScriptRoot '../output/testresults'),
    # Pester.psd1; found in the NuGet global-packages folder when omitted.
    [string] $PesterModulePath,
    [ValidateSet('None', 'Normal', 'Detailed', 'Diagnostic')] [string] $Output = 'Normal',
    [string[]] $Tag,
    [string[]] $ExcludeTag,
    [string[]] $FullNameFilter
)

$ErrorActionPreference = 'Stop'
$ci = [bool]$env:CI -and $env:CI -ne 'false'
if ($ci) { $PSStyle.OutputRendering = 'PlainText' }   # CI logs: no escape sequences

function Find-Pester {
    $version = '5.7.1'
    $roots = @(
        $env:NUGET_PACKAGES
        & dotnet nuget locals global-packages --list 2>$null | ForEach-Object { if ($_ -match '^global-packages:\s*(.+)$') { $Matches[1].Trim() } }
        Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages'
    ) | Where-Object { $_ }
    foreach ($root in $roots) {
        $candidate = Join-Path $root "pester/$version/tools/Pester.psd1"
        if (Test-Path -LiteralPath $candidate) { return $candidate }
    }
    throw "Pester $version is not in the NuGet cache ($($roots -join ', ')). Run 'dotnet restore PsIpc.slnx' (src/PsIpc/PsIpc.csproj downloads it)."
}

if (-not $PesterModulePath) { $PesterModulePath = Find-Pester }
Import-Module -Name $PesterModulePath -Force -ErrorAction Stop
$env:PSIPC_MODULE_PATH = [System.IO.Path]::GetFullPath($ModulePath)
$OutputDirectory = [System.IO.Path]::GetFullPath($OutputDirectory)
$null = New-Item -ItemType Directory -Force -Path $OutputDirectory
Write-Host "Pester $((Get-Module Pester).Version) over $($Path -join ', ') with PsIpc from $env:PSIPC_MODULE_PATH"

$config = New-PesterConfiguration
$config.Run.Path = $Path
$config.Run.PassThru = $true
$config.Output.Verbosity = $Output
$config.Output.StackTraceVerbosity = 'Filtered'   # the test's own lines, not Pester's
if ($Tag) { $config.Filter.Tag = $Tag }
if ($ExcludeTag) { $config.Filter.ExcludeTag = $ExcludeTag }
if ($FullNameFilter) { $config.Filter.FullName = $FullNameFilter }

$result = Invoke-Pester -Configuration $config
if (-not $result) {
    # Pester reports "No test files were found" itself and returns nothing.
    Write-Host "Pester ran no test in $($Path -join ', ')."
    exit 1
}

$result | Export-NUnitReport -Path (Join-Path $OutputDirectory 'pester-nunit.xml')
$result | Export-JUnitReport -Path (Join-Path $OutputDirectory 'pester-junit.xml')
$summary = [ordered]@{
    Result           = $result.Result
    Total            = $result.TotalCount
    Passed           = $result.PassedCount
    Failed           = $result.FailedCount
    Skipped          = $result.SkippedCount
    Inconclusive     = $result.InconclusiveCount
    NotRun           = $result.NotRunCount
    FailedBlocks     = $result.FailedBlocksCount
    FailedContainers = $result.FailedContainersCount
    Duration         = $result.Duration.TotalSeconds
}
$summary | ConvertTo-Json | Set-Content -LiteralPath (Join-Path $OutputDirectory 'pester-summary.json') -Encoding utf8

# Failures again, together at the end, where a CI log reader looks first.
$problems = @(
    foreach ($t in $result.Failed) { @{ What = "[-] $($t.ExpandedPath)"; Error = $t.ErrorRecord } }
    foreach ($b in $result.FailedBlocks) { @{ What = "[-] BeforeAll/AfterAll in $($b.ExpandedPath)"; Error = $b.ErrorRecord } }
    foreach ($c in $result.FailedContainers) { @{ What = "[-] Could not run $($c.Item)"; Error = $c.ErrorRecord } }
)
if ($problems) {
    Write-Host ''
    Write-Host "Pester failures ($($problems.Count)):"
    foreach ($p in $problems) {
        Write-Host $p.What
        foreach ($e in $p.Error) {
            $message = if ($ci) { "$e" } else { ("$e" -split "`n")[0] }
            Write-Host ('      ' + ($message -replace "`n", "`n      "))
        }
    }
}

$ran = $result.PassedCount + $result.FailedCount
if ($ran -eq 0 -and -not $problems) {
    Write-Host "Pester ran no test in $($Path -join ', ')."
    exit 1
}
exit $(if ($result.Result -eq 'Passed' -and -not $problems) { 0 } else { 1 })
