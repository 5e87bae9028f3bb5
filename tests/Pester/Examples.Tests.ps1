<#
    Every example the project shows must run as written:
      - each ```powershell block under ## EXAMPLES of docs/cmdlets/*.md, in a fresh pwsh with PsIpc
        imported and $ErrorActionPreference = 'Stop'; it must end with exit code 0, write nothing to
        standard error and leave no channel open;
      - each examples/*.ps1, in a fresh pwsh (-File), which imports PsIpc itself from
        $env:PSIPC_MODULE_PATH; exit code 0 and nothing on standard error.
#>

BeforeDiscovery {
    . $PSScriptRoot/common.ps1

    # One case per ```powershell block of an example in docs/cmdlets/*.md.
    $docExamples = foreach ($page in Get-ChildItem -Path (Join-Path $RepoRoot 'docs/cmdlets') -Filter *.md -File | Sort-Object Name) {
        $lines = (Get-Content -LiteralPath $page.FullName -Raw) -replace "`r`n", "`n" -split "`n"
        $section = $null; $title = $null; $code = $null
        foreach ($line in $lines) {
            if ($null -ne $code) {
                if ($line -match '^```\s*$') {
                    @{ Page = $page.BaseName; Title = $title; Code = ($code -join "`n") }
                    $code = $null
                }
                else { $code.Add($line) }
                continue
            }
            if ($line -match '^## (.+)$') { $section = $Matches[1].Trim(); continue }
            if ($section -eq 'EXAMPLES' -and $line -match '^### (.+)$') { $title = $Matches[1].Trim(); continue }
            if ($section -eq 'EXAMPLES' -and $line -match '^```powershell\s*$') { $code = [System.Collections.Generic.List[string]]::new() }
        }
    }
    $docExamples = @($docExamples)

    $python = Get-Command -Name python3, python -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    $scriptExamples = @(Get-ChildItem -Path (Join-Path $RepoRoot 'examples') -Filter *.ps1 -File | Sort-Object Name | ForEach-Object {
            @{ Script = $_.Name; Path = $_.FullName; NeedsPython = $_.Name -like '*python*'; HasPython = [bool]$python }
        })
}

BeforeAll {
    . $PSScriptRoot/common.ps1

    function Invoke-ExampleScript {
        # pwsh -NoProfile -NonInteractive -File <script>, as `./build.ps1 Demo` runs demo.ps1; the child
        # inherits $env:PSIPC_MODULE_PATH. Returns the shape of Wait-PwshChild's result.
        param([string] $Path, [double] $TimeoutSeconds = 120)
        $pwsh = Get-PwshPath
        $psi = [System.Diagnostics.ProcessStartInfo]::new($pwsh.FilePath)
        foreach ($a in @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive', '-File', $Path)) { $psi.ArgumentList.Add($a) }
        $psi.UseShellExecute = $false
        $psi.RedirectStandardInput = $true
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $psi.StandardOutputEncoding = [System.Text.UTF8Encoding]::new($false)
        $psi.StandardErrorEncoding = [System.Text.UTF8Encoding]::new($false)
        $psi.WorkingDirectory = Split-Path -Parent $Path
        $psi.Environment['PSIPC_MODULE_PATH'] = $env:PSIPC_MODULE_PATH
        $psi.Environment['NO_COLOR'] = '1'
        $process = [System.Diagnostics.Process]::Start($psi)
        $process.StandardInput.Close()
        $process | Add-Member -NotePropertyName StdErrTask -NotePropertyValue $process.StandardError.ReadToEndAsync()
        $process | Wait-PwshChild -TimeoutSeconds $TimeoutSeconds
    }

    function Format-ChildResult {
        # The child's output, for the failure message.
        param($Result)
        "exit code $($Result.ExitCode)$(if ($Result.TimedOut) { ' (killed: timed out)' })`n--- stdout ---`n$($Result.Output -join "`n")`n--- stderr ---`n$($Result.Error)"
    }
}

Describe 'The examples of docs/cmdlets' {
    It 'has examples to run' -ForEach @(@{ Found = $docExamples.Count }) {
        $Found | Should -BeGreaterThan 0
    }

    It '<Page>, <Title>' -ForEach $docExamples {
        # The example runs as a user would paste it; then nothing it opened may be left open.
        $body = $Code + @'

$left = @(Get-IpcChannel)
if ($left) { throw "The example left $($left.Count) channel(s) open: $(($left | ForEach-Object { "$($_.Name) ($($_.Role))" }) -join ', ')" }
'@
        $result = Invoke-PwshChild -Command $body -TimeoutSeconds 90
        $result.TimedOut | Should -BeFalse -Because (Format-ChildResult $result)
        $result.ExitCode | Should -Be 0 -Because (Format-ChildResult $result)
        $result.Error | Should -BeNullOrEmpty -Because (Format-ChildResult $result)
        $result.Output | Should -Not -BeNullOrEmpty -Because 'every example shows something'
    }
}

Describe 'examples/<Script>' -ForEach $scriptExamples {
    It 'imports PsIpc from $env:PSIPC_MODULE_PATH, else from ../output/PsIpc' {
        $text = Get-Content -LiteralPath $Path -Raw
        $text | Should -Match ([regex]::Escape('$env:PSIPC_MODULE_PATH'))
        $text | Should -Match ([regex]::Escape("Join-Path `$PSScriptRoot '../output/PsIpc'"))
    }

    It 'runs to the end with exit code 0 and no error' -Skip:($NeedsPython -and -not $HasPython) {
        $result = Invoke-ExampleScript -Path $Path -TimeoutSeconds 120
        $result.TimedOut | Should -BeFalse -Because (Format-ChildResult $result)
        $result.ExitCode | Should -Be 0 -Because (Format-ChildResult $result)
        $result.Error | Should -BeNullOrEmpty -Because (Format-ChildResult $result)
        $result.Output | Should -Not -BeNullOrEmpty
    }
}

Describe 'examples/psipc_client.py' {
    It 'speaks the protocol as docs/protocol.md shows it, byte for byte' -Skip:(-not (Get-Command -Name python3, python -CommandType Application -ErrorAction SilentlyContinue)) {
        $python = (Get-Command -Name python3, python -CommandType Application | Select-Object -First 1).Source
        $check = @'
import sys
sys.path.insert(0, sys.argv[1])
import psipc_client as pc
assert pc.encode_hello(process_id=4242).hex(" ") == "10 00 00 00 01 50 53 49 50 43 01 00 00 92 10 00 00 00 00 00 04"
assert pc.encode_frame(pc.TEXT, "hi".encode()).hex(" ") == "02 00 00 00 10 68 69"
assert pc.encode_frame(pc.JSON, b'{"n":1}').hex(" ") == "07 00 00 00 13 7b 22 6e 22 3a 31 7d"
assert pc.encode_frame(pc.GOODBYE).hex(" ") == "00 00 00 00 02"
print("ok")
'@
        $output = $check | & $python -B - (Join-Path $RepoRoot 'examples') 2>&1   # -B: no __pycache__ in examples/
        $LASTEXITCODE | Should -Be 0 -Because ($output -join "`n")
        $output | Should -Be 'ok'
    }
}
