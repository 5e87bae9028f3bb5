# Child processes for bench/Invoke-Bench.ps1: start them with redirected output, wait for one or
# several together (failing fast when one of them fails), and read the JSON line each prints.

$script:BenchEnvironment = @{
    POWERSHELL_TELEMETRY_OPTOUT = '1'
    POWERSHELL_UPDATECHECK      = 'Off'
    NO_COLOR                    = '1'   # plain error text in what we report
}

function Get-PwshLaunch {
    # The pwsh running this script, so every child is the same version. Under `dotnet pwsh` (the
    # local tool) this process is the dotnet host running $PSHOME/pwsh.dll.
    $processPath = [Environment]::ProcessPath
    $pwshDll = Join-Path $PSHOME 'pwsh.dll'
    if ([IO.Path]::GetFileNameWithoutExtension($processPath) -eq 'dotnet' -and (Test-Path $pwshDll)) {
        return [pscustomobject]@{ FilePath = $processPath; Prefix = @($pwshDll) }
    }
    if ([IO.Path]::GetFileNameWithoutExtension($processPath) -eq 'pwsh') {
        return [pscustomobject]@{ FilePath = $processPath; Prefix = @() }
    }
    $pwsh = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
    if (Test-Path $pwsh) {
        return [pscustomobject]@{ FilePath = $pwsh; Prefix = @() }
    }
    throw "Cannot tell how to start the pwsh at $PSHOME (this process is $processPath)."
}

function Get-DotnetPath {
    $processPath = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($processPath) -eq 'dotnet') {
        return $processPath
    }
    (Get-Command dotnet -CommandType Application -ErrorAction Stop | Select-Object -First 1).Source
}

function Start-BenchProcess {
    param(
        [Parameter(Mandatory)] [string] $Label,
        [Parameter(Mandatory)] [string] $FilePath,
        [string[]] $ArgumentList = @()
    )
    $startInfo = [System.Diagnostics.ProcessStartInfo]::new($FilePath)
    foreach ($argument in $ArgumentList) {
        $startInfo.ArgumentList.Add($argument)
    }
    $startInfo.UseShellExecute = $false
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    $startInfo.WorkingDirectory = $script:RepoRoot
    foreach ($name in $script:BenchEnvironment.Keys) {
        $startInfo.Environment[$name] = $script:BenchEnvironment[$name]
    }
    $process = [System.Diagnostics.Process]::Start($startInfo)
    [pscustomobject]@{
        Label   = $Label
        Process = $process
        Stdout  = $process.StandardOutput.ReadToEndAsync()
        Stderr  = $process.StandardError.ReadToEndAsync()
    }
}

function Start-BenchPwsh {
    # Runs bench/workers/<Worker>.ps1 in a fresh pwsh with the given parameters.
    param(
        [Parameter(Mandatory)] [string] $Label,
        [Parameter(Mandatory)] [string] $Worker,
        [System.Collections.IDictionary] $Parameters = @{}
    )
    $launch = Get-PwshLaunch
    $arguments = [System.Collections.Generic.List[string]]::new()
    $arguments.AddRange([string[]]$launch.Prefix)
    $arguments.AddRange([string[]]@('-NoProfile', '-NonInteractive', '-File', (Join-Path $script:WorkerRoot "$Worker.ps1")))
    foreach ($name in $Parameters.Keys) {
        $arguments.Add("-$name")
        $arguments.Add([string]::Format([cultureinfo]::InvariantCulture, '{0}', $Parameters[$name]))
    }
    Start-BenchProcess -Label $Label -FilePath $launch.FilePath -ArgumentList $arguments
}

function Stop-BenchProcess {
    # Kills one of our children (and what it started, e.g. a Start-Job process) if it still runs.
    param([Parameter(Mandatory)] $Handle)
    if (-not $Handle.Process.HasExited) {
        $Handle.Process.Kill($true)
    }
    $null = $Handle.Process.WaitForExit(5000)
}

function Get-BenchProcessError {
    param([Parameter(Mandatory)] $Handle)
    $stderr = $Handle.Stderr.GetAwaiter().GetResult()
    $stdout = $Handle.Stdout.GetAwaiter().GetResult()
    $text = (($stderr, $stdout) -join ' ') -replace '\s+', ' '
    if ($text.Length -gt 400) {
        $text = $text.Substring(0, 400) + '...'
    }
    "$($Handle.Label) exited with code $($Handle.Process.ExitCode): $($text.Trim())"
}

function Wait-BenchProcess {
    # Waits for all handles to exit within $TimeoutSeconds. The first one to fail (or the timeout)
    # kills the others and throws. Returns each process's JSON result in the order of $Handle, or its
    # whole stdout with -RawOutput.
    param(
        [Parameter(Mandatory)] [object[]] $Handle,
        [double] $TimeoutSeconds = 300,
        [switch] $RawOutput
    )
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    try {
        while ($running = @($Handle | Where-Object { -not $_.Process.HasExited })) {
            $failed = $Handle | Where-Object { $_.Process.HasExited -and $_.Process.ExitCode -ne 0 } |
                Select-Object -First 1
            if ($failed) {
                throw (Get-BenchProcessError $failed)
            }
            if ([DateTime]::UtcNow -gt $deadline) {
                throw "$(($running.Label) -join ', ') did not finish within $TimeoutSeconds s"
            }
            $null = $running[0].Process.WaitForExit(50)
        }
        foreach ($h in $Handle) {
            $h.Process.WaitForExit()   # also waits for the redirected output to drain
            if ($h.Process.ExitCode -ne 0) {
                throw (Get-BenchProcessError $h)
            }
        }
    }
    finally {
        foreach ($h in $Handle) {
            Stop-BenchProcess $h
        }
    }

    foreach ($h in $Handle) {
        $stdout = $h.Stdout.GetAwaiter().GetResult()
        if ($RawOutput) {
            $stdout
            continue
        }
        $json = $stdout -split '\r?\n' | Where-Object { $_.StartsWith('{') } | Select-Object -Last 1
        if (-not $json) {
            throw "$($h.Label) printed no JSON result: $stdout"
        }
        $json | ConvertFrom-Json
    }
}

function Invoke-BenchPwsh {
    param(
        [Parameter(Mandatory)] [string] $Label,
        [Parameter(Mandatory)] [string] $Worker,
        [System.Collections.IDictionary] $Parameters = @{},
        [double] $TimeoutSeconds = 300
    )
    $handle = Start-BenchPwsh -Label $Label -Worker $Worker -Parameters $Parameters
    Wait-BenchProcess -Handle $handle -TimeoutSeconds $TimeoutSeconds
}
