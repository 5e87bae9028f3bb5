<#
    Shared set-up for the Pester tests. Every test file starts with

        BeforeAll { . $PSScriptRoot/common.ps1 }

    It imports the staged module ($env:PSIPC_MODULE_PATH, set by build.ps1 Test; otherwise
    <repo>/output/PsIpc, which `./build.ps1 Build` stages) and defines:

        Get-PwshPath        the pwsh running the tests: FilePath + ArgumentList to start another one
        Start-PwshChild     starts a child pwsh that has PsIpc imported; returns the Process
        Wait-PwshChild      waits for such a child (killing it after a timeout); returns its output
        Invoke-PwshChild    Start-PwshChild + Wait-PwshChild
        New-TestPipeName    a unique short pipe name

    Child processes: `dotnet pwsh` runs pwsh.dll under the dotnet host, so the path of this process
    is dotnet's; Get-PwshPath returns that host plus $PSHOME/pwsh.dll (or pwsh itself when the tests
    run in a normal pwsh). Start-Job, Start-ThreadJob and ForEach-Object -Parallel need nothing
    special: import the module there with  Import-Module $env:PSIPC_MODULE_PATH.
#>

$RepoRoot = [System.IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../..'))
$PsIpcModulePath = if ($env:PSIPC_MODULE_PATH) { $env:PSIPC_MODULE_PATH } else { Join-Path $RepoRoot 'output/PsIpc' }
$PsIpcModulePath = [System.IO.Path]::GetFullPath($PsIpcModulePath)
if (-not (Test-Path -LiteralPath (Join-Path $PsIpcModulePath 'PsIpc.psd1'))) {
    throw "The staged PsIpc module is not at '$PsIpcModulePath'. Run: dotnet pwsh -File ./build.ps1 Build"
}
# Children, jobs and runspaces find the same staged module through this variable.
$env:PSIPC_MODULE_PATH = $PsIpcModulePath

$loaded = Get-Module -Name PsIpc
if (-not $loaded -or [System.IO.Path]::GetFullPath($loaded.ModuleBase) -ne $PsIpcModulePath) {
    Import-Module -Name $PsIpcModulePath -Global -Force -ErrorAction Stop
}
Remove-Variable -Name loaded

function Get-PwshPath {
    <#
    .SYNOPSIS
        How to start another pwsh like this one: @{ FilePath; ArgumentList } (ArgumentList goes first).
    .EXAMPLE
        $pwsh = Get-PwshPath
        & $pwsh.FilePath @($pwsh.ArgumentList) -NoProfile -NonInteractive -Command '$PID'
    #>
    [CmdletBinding()]
    param()
    $exe = [Environment]::ProcessPath   # the same as (Get-Process -Id $PID).Path
    $prefix = @()
    if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') {
        # `dotnet pwsh` (a local tool): the host runs pwsh.dll, which sits in $PSHOME.
        $prefix = @(Join-Path $PSHOME 'pwsh.dll')
    }
    [pscustomobject]@{ FilePath = $exe; ArgumentList = $prefix }
}

function Start-PwshChild {
    <#
    .SYNOPSIS
        Starts a child pwsh (-NoProfile -NonInteractive) that imports the staged PsIpc, then runs a
        script block or command text with the given arguments ($args / param() inside).
    .DESCRIPTION
        Returns the System.Diagnostics.Process with standard output and error redirected (UTF-8, no
        colour). Standard error is read in the background (the process's StdErrTask property);
        standard output is left to the caller: $p.StandardOutput.ReadLine() waits for a line the
        child prints (for example 'ready'), and Wait-PwshChild collects the rest. Read or wait for
        the output of a child that prints a lot, or it blocks when the pipe buffer is full.
        Standard input is closed unless -KeepStandardInput is given.

        The script block runs from its text in the child: $using: and closures do not work; pass
        values with -ArgumentList (each goes over CliXml, so strings, numbers, byte[] and hashtables
        arrive as themselves). Inside, $ErrorActionPreference is 'Stop', so an error exits non-zero.
    .EXAMPLE
        $p = Start-PwshChild { param($Name) $c = New-IpcPipe -Name $Name -Connect; 'ready'; ... } -ArgumentList $name
        $p.StandardOutput.ReadLine() | Should -Be 'ready'
    #>
    [CmdletBinding(DefaultParameterSetName = 'ScriptBlock')]
    [OutputType([System.Diagnostics.Process])]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'ScriptBlock')] [scriptblock] $ScriptBlock,
        [Parameter(Mandatory, ParameterSetName = 'Command')] [string] $Command,
        [object[]] $ArgumentList = @(),
        [string] $WorkingDirectory = (Get-Location -PSProvider FileSystem).ProviderPath,
        # Extra environment variables for the child.
        [hashtable] $Environment = @{},
        # Do not import PsIpc in the child.
        [switch] $NoModule,
        # Leave standard input open ($p.StandardInput) instead of closing it.
        [switch] $KeepStandardInput
    )

    $body = if ($PSCmdlet.ParameterSetName -eq 'ScriptBlock') { $ScriptBlock.ToString() } else { $Command }
    $quote = { param($s) "'" + ($s -replace "'", "''") + "'" }
    $argumentText = foreach ($a in $ArgumentList) {
        '([System.Management.Automation.PSSerializer]::Deserialize(' + (& $quote ([System.Management.Automation.PSSerializer]::Serialize($a, 4))) + '))'
    }
    $lines = @(
        '$ErrorActionPreference = ''Stop'''
        '$ProgressPreference = ''SilentlyContinue'''
        if (-not $NoModule) { 'Import-Module -Name ' + (& $quote $env:PSIPC_MODULE_PATH) + ' -ErrorAction Stop' }
        "& {`n$body`n} $($argumentText -join ' ')"
    )
    $script = $lines -join "`n"

    $pwsh = Get-PwshPath
    $psi = [System.Diagnostics.ProcessStartInfo]::new($pwsh.FilePath)
    foreach ($a in $pwsh.ArgumentList) { $psi.ArgumentList.Add($a) }
    foreach ($a in '-NoProfile', '-NonInteractive') { $psi.ArgumentList.Add($a) }
    $encoded = [Convert]::ToBase64String([System.Text.Encoding]::Unicode.GetBytes($script))
    if ($encoded.Length -lt 30000) {
        $psi.ArgumentList.Add('-EncodedCommand')
        $psi.ArgumentList.Add($encoded)
    }
    else {
        # Too long for one command-line argument: a script file that deletes itself when it starts.
        $file = Join-Path ([System.IO.Path]::GetTempPath()) "psipc-child-$([guid]::NewGuid().ToString('N')).ps1"
        Set-Content -LiteralPath $file -Encoding utf8 -Value ("Remove-Item -LiteralPath `$PSCommandPath -ErrorAction SilentlyContinue`n" + $script)
        $psi.ArgumentList.Add('-File')
        $psi.ArgumentList.Add($file)
    }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.StandardOutputEncoding = [System.Text.UTF8Encoding]::new($false)
    $psi.StandardErrorEncoding = [System.Text.UTF8Encoding]::new($false)
    $psi.WorkingDirectory = $WorkingDirectory
    $psi.Environment['PSIPC_MODULE_PATH'] = $env:PSIPC_MODULE_PATH
    $psi.Environment['NO_COLOR'] = '1'   # plain text output, easy to compare
    foreach ($key in $Environment.Keys) { $psi.Environment[[string]$key] = [string]$Environment[$key] }

    $process = [System.Diagnostics.Process]::Start($psi)
    if (-not $KeepStandardInput) { $process.StandardInput.Close() }
    $process | Add-Member -NotePropertyName StdErrTask -NotePropertyValue $process.StandardError.ReadToEndAsync() -PassThru
}

function Wait-PwshChild {
    <#
    .SYNOPSIS
        Waits for a child from Start-PwshChild; kills it (and its children) after -TimeoutSeconds.
        Returns ExitCode, Output (the rest of standard output, as lines), Error (standard error),
        TimedOut and Process.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, ValueFromPipeline)] [System.Diagnostics.Process] $Process,
        [double] $TimeoutSeconds = 60
    )
    process {
        $outTask = $Process.StandardOutput.ReadToEndAsync()
        $timedOut = -not $Process.WaitForExit([int][Math]::Min([int]::MaxValue, $TimeoutSeconds * 1000))
        if ($timedOut) {
            try { $Process.Kill($true) } catch [System.InvalidOperationException] { }   # exited meanwhile
        }
        $Process.WaitForExit()   # also waits for the redirected streams to reach their end
        $stdout = $outTask.GetAwaiter().GetResult()
        $stderr = if ($Process.PSObject.Properties['StdErrTask']) { $Process.StdErrTask.GetAwaiter().GetResult() } else { '' }
        $stdout = ($stdout -replace "`r`n", "`n").TrimEnd("`n")
        [pscustomobject]@{
            ExitCode = $Process.ExitCode
            Output   = if ($stdout) { [string[]]($stdout -split "`n") } else { [string[]]@() }
            Error    = $stderr.TrimEnd()
            TimedOut = $timedOut
            Process  = $Process
        }
    }
}

function Invoke-PwshChild {
    <#
    .SYNOPSIS
        Runs a script block (or -Command text) in a child pwsh with PsIpc imported and waits for it.
    .EXAMPLE
        $r = Invoke-PwshChild { param($Name) (New-IpcPipe -Name $Name -Connect -TimeoutSeconds 5) | Send-IpcMessage -InputObject 'hi' } -ArgumentList $name
        $r.ExitCode | Should -Be 0 -Because $r.Error
    #>
    [CmdletBinding(DefaultParameterSetName = 'ScriptBlock')]
    param(
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'ScriptBlock')] [scriptblock] $ScriptBlock,
        [Parameter(Mandatory, ParameterSetName = 'Command')] [string] $Command,
        [object[]] $ArgumentList = @(),
        [string] $WorkingDirectory = (Get-Location -PSProvider FileSystem).ProviderPath,
        [hashtable] $Environment = @{},
        [switch] $NoModule,
        [double] $TimeoutSeconds = 60
    )
    $start = @{} + $PSBoundParameters
    $start.Remove('TimeoutSeconds')
    Start-PwshChild @start | Wait-PwshChild -TimeoutSeconds $TimeoutSeconds
}

function New-TestPipeName {
    <#
    .SYNOPSIS
        A unique, short pipe name (Unix socket paths are limited to about 104 bytes).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param([string] $Prefix = 'psipct')
    '{0}-{1}' -f $Prefix, [guid]::NewGuid().ToString('N').Substring(0, 12)
}
