<#
    The README's tour runs as written, twice in a row in one session: every ```powershell block of its
    "## Tour" section (the RabbitMQ block aside: it needs a broker, a host and credentials of your own; the
    Connect-IpcQueue page's examples run against the test broker in Examples.Tests.ps1). A second run
    finds what the first left behind (open channels, shared memory segments, pipe names), so the tour must
    clean up after itself as a user's script should. The tour imports ./output/PsIpc itself: it runs in a
    folder whose output/PsIpc is the staged module under test.
#>

BeforeDiscovery {
    . $PSScriptRoot/common.ps1
    $lines = (Get-Content -LiteralPath (Join-Path $RepoRoot 'README.md') -Raw) -replace "`r`n", "`n" -split "`n"
    $blocks = [System.Collections.Generic.List[object]]::new()
    $inTour = $false; $heading = $null; $code = $null
    foreach ($line in $lines) {
        if ($null -ne $code) {
            if ($line -match '^```\s*$') { $blocks.Add(@{ Heading = $heading; Code = $code -join "`n" }); $code = $null }
            else { $code.Add($line) }
            continue
        }
        if ($line -match '^## (.+)$') { $inTour = $Matches[1].Trim() -eq 'Tour'; $heading = $Matches[1].Trim(); continue }
        if ($line -match '^### (.+)$') { $heading = $Matches[1].Trim(); continue }
        if ($inTour -and $line -match '^```powershell\s*$' -and $heading -notmatch 'RabbitMQ') { $code = [System.Collections.Generic.List[string]]::new() }
    }
    $TourBlocks = @($blocks)
}

BeforeAll {
    . $PSScriptRoot/common.ps1
    $script:Folder = Join-Path ([System.IO.Path]::GetTempPath()) "psipc-readme-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $null = New-Item -ItemType Directory -Path (Join-Path $Folder 'output')
    $null = New-Item -ItemType SymbolicLink -Path (Join-Path $Folder 'output/PsIpc') -Target $env:PSIPC_MODULE_PATH
}

AfterAll {
    if ($script:Folder -and (Test-Path -LiteralPath $script:Folder)) { Remove-Item -LiteralPath $script:Folder -Recurse -Force }
}

Describe 'The README tour' {
    It 'has blocks to run (<Count>)' -ForEach @(@{ Count = $TourBlocks.Count }) {
        $Count | Should -BeGreaterOrEqual 3
    }

    It 'runs twice in a row in one session without an error, leaving nothing open' -ForEach @(@{ Blocks = $TourBlocks }) {
        $tour = ($Blocks | ForEach-Object { "# --- $($_.Heading)`n$($_.Code)" }) -join "`n"
        $body = @"
`$ErrorActionPreference = 'Stop'
foreach (`$run in 1, 2) {
    `$tour = {
$tour
    }
    `$null = & `$tour
    `$left = @(Get-IpcChannel)
    if (`$left) { throw "Run `$run of the tour left `$(`$left.Count) channel(s) open: `$((`$left | ForEach-Object Name) -join ', ')" }
    "run `$run done"
}
"@
        $result = Invoke-PwshChild -NoModule -Command $body -WorkingDirectory $Folder -TimeoutSeconds 240
        $because = "exit code $($result.ExitCode)`n--- stdout ---`n$($result.Output -join "`n")`n--- stderr ---`n$($result.Error)"
        $result.TimedOut | Should -BeFalse -Because $because
        $result.ExitCode | Should -Be 0 -Because $because
        $result.Error | Should -BeNullOrEmpty -Because $because
        $result.Output | Should -Contain 'run 1 done'
        $result.Output | Should -Contain 'run 2 done'
    }
}
