# The soak's processes (dot-sourced by soak/Invoke-Soak.ps1): start a worker, wait for its ready line,
# read its result, stop it, and sample a process from /proc.

function Start-SoakWorker {
    # Runs soak/SoakWorker.ps1 in a fresh pwsh (the one running this script) with its standard streams ours.
    param([Parameter(Mandatory)] [string] $Label, [Parameter(Mandatory)] [hashtable] $Parameters, [string] $OutputDirectory)
    $exe = [Environment]::ProcessPath
    $psi = [System.Diagnostics.ProcessStartInfo]::new($exe)
    # `dotnet pwsh` runs pwsh.dll under the dotnet host; a normal install runs pwsh itself.
    if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
    foreach ($a in '-NoProfile', '-NonInteractive', '-File', (Join-Path $PSScriptRoot 'SoakWorker.ps1')) { $psi.ArgumentList.Add($a) }
    foreach ($key in $Parameters.Keys) {
        $psi.ArgumentList.Add("-$key")
        $psi.ArgumentList.Add([string]::Format([cultureinfo]::InvariantCulture, '{0}', $Parameters[$key]))
    }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    foreach ($pair in @{ POWERSHELL_TELEMETRY_OPTOUT = '1'; POWERSHELL_UPDATECHECK = 'Off'; NO_COLOR = '1' }.GetEnumerator()) {
        $psi.Environment[$pair.Key] = $pair.Value
    }
    $process = [System.Diagnostics.Process]::Start($psi)
    [pscustomobject]@{
        Label     = $Label
        Role      = $Parameters.Role
        Transport = if ($Parameters.ContainsKey('Transport')) { $Parameters.Transport } else { 'Mixed' }
        Process   = $process
        Stderr    = $process.StandardError.ReadToEndAsync()
        Rest      = $null
        ErrFile   = Join-Path $OutputDirectory (($Label -replace '\W+', '-') + '.err')
    }
}

function Wait-SoakReady {
    # Reads the worker's standard output up to its {"event":"ready"} line and returns that line's object.
    param([Parameter(Mandatory)] $Worker, [double] $TimeoutSeconds = 120)
    $until = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ($true) {
        $read = $Worker.Process.StandardOutput.ReadLineAsync()
        $left = [int][Math]::Max(0, ($until - [DateTime]::UtcNow).TotalMilliseconds)
        if (-not $read.Wait($left)) { throw "$($Worker.Label) was not ready within $TimeoutSeconds s." }
        $line = $read.Result
        if ($null -eq $line) { throw (Get-SoakWorkerError $Worker -Before 'ready') }
        if ($line -like '{"*') {
            $event = $line | ConvertFrom-Json
            if ($event.PSObject.Properties['event'] -and $event.event -eq 'ready') {
                $Worker.Rest = $Worker.Process.StandardOutput.ReadToEndAsync()
                return $event
            }
        }
    }
}

function Get-SoakWorkerError {
    param([Parameter(Mandatory)] $Worker, [string] $Before)
    if (-not $Worker.Process.HasExited) { $Worker.Process.Kill($true) }
    $null = $Worker.Process.WaitForExit(10000)
    $text = ($Worker.Stderr.GetAwaiter().GetResult() -replace '\s+', ' ').Trim()
    if ($text.Length -gt 600) { $text = $text.Substring(0, 600) + '...' }
    $when = if ($Before) { " before it was $Before" } else { '' }
    "$($Worker.Label) exited with code $($Worker.Process.ExitCode)${when}: $text"
}

function Wait-SoakExit {
    param([Parameter(Mandatory)] $Worker, [double] $TimeoutSeconds = 60)
    if (-not $Worker.Process.WaitForExit([int]($TimeoutSeconds * 1000))) {
        throw "$($Worker.Label) did not end within $TimeoutSeconds s after its load."
    }
    $Worker.Process.WaitForExit()
    if ($Worker.Process.ExitCode -ne 0) { throw (Get-SoakWorkerError $Worker) }
}

function Get-SoakResult {
    # The worker's {"event":"result"} line, with its label and pid.
    param([Parameter(Mandatory)] $Worker)
    $lines = @(($Worker.Rest.GetAwaiter().GetResult() -split '\r?\n') | Where-Object { $_ -like '{"*' })
    $result = $lines | ForEach-Object { $_ | ConvertFrom-Json } | Where-Object { $_.PSObject.Properties['event'] -and $_.event -eq 'result' } | Select-Object -Last 1
    if (-not $result) { throw "$($Worker.Label) ended without a result line." }
    $result | Add-Member -NotePropertyName label -NotePropertyValue $Worker.Label -PassThru |
        Add-Member -NotePropertyName pid -NotePropertyValue $Worker.Process.Id -PassThru
}

function Stop-SoakWorker {
    # Kills a worker still running (after a failure) and keeps its standard error in <label>.err.
    param([Parameter(Mandatory)] $Worker)
    if (-not $Worker.Process.HasExited) {
        $Worker.Process.Kill($true)
        $null = $Worker.Process.WaitForExit(10000)
    }
    $stderr = $Worker.Stderr.GetAwaiter().GetResult()
    if ($stderr) { Set-Content -LiteralPath $Worker.ErrFile -Value $stderr -Encoding utf8 }
    $Worker.Process.Dispose()
}

# Sampling 15 processes of ~175 descriptors each every second is ~2,600 readlink calls: in C#, so that the
# sampler keeps its pace on a loaded machine (an interpreted loop fell to one sample in 8 s at a load of 100).
if (-not ('PsIpcSoak.ProcSampler' -as [type])) {
    Add-Type -TypeDefinition @'
namespace PsIpcSoak
{
    public static class ProcSampler
    {
        // VmRSS and RssAnon (KiB), descriptors, descriptors that are assemblies or native libraries, threads;
        // null once the process is gone (or a zombie without VmRSS).
        public static long[] Sample(int pid)
        {
            long rss = -1, anon = 0, threads = 0, fds = 0, libraries = 0;
            try
            {
                foreach (string line in System.IO.File.ReadAllLines("/proc/" + pid + "/status"))
                {
                    if (line.StartsWith("VmRSS:")) rss = Number(line);
                    else if (line.StartsWith("RssAnon:")) anon = Number(line);
                    else if (line.StartsWith("Threads:")) threads = Number(line);
                }
                foreach (string entry in System.IO.Directory.EnumerateFileSystemEntries("/proc/" + pid + "/fd"))
                {
                    fds++;
                    string target = null;
                    try { target = new System.IO.FileInfo(entry).LinkTarget; } catch (System.IO.IOException) { } // closed since listed
                    if (target != null && IsLibrary(target)) libraries++;
                }
            }
            catch (System.IO.IOException) { return null; }
            catch (System.UnauthorizedAccessException) { return null; }
            if (rss < 0) return null;
            return new long[] { rss, anon, fds, libraries, threads };
        }

        private static long Number(string line)
        {
            string[] parts = line.Split(new[] { ' ', '\t' }, System.StringSplitOptions.RemoveEmptyEntries);
            return long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        }

        private static bool IsLibrary(string path)
        {
            if (path.EndsWith(".dll", System.StringComparison.Ordinal) || path.EndsWith(".so", System.StringComparison.Ordinal)) return true;
            int so = path.LastIndexOf(".so.", System.StringComparison.Ordinal);
            return so > 0 && path.IndexOf('/', so) < 0;
        }
    }
}
'@
}

function Get-ProcSample {
    # The working set (VmRSS) and its private part (RssAnon: the heaps; the rest is mapped files, the runtime's
    # code and shared memory such as a queue's ring, which comes in page by page until it has gone round once),
    # open descriptors and threads of a process, from /proc; $null once it is gone.
    # Fds counts every descriptor; IpcFds leaves out the assemblies and native libraries the runtime keeps
    # open (a code path first taken late loads one more: that is not a leak), leaving sockets, pipes,
    # event and epoll descriptors, /dev/shm files and any other file.
    param([Parameter(Mandatory)] [int] $ProcessId)
    $v = [PsIpcSoak.ProcSampler]::Sample($ProcessId)
    if ($null -eq $v) { return $null }
    [pscustomobject]@{ RssMiB = [Math]::Round($v[0] / 1024.0, 1); AnonMiB = [Math]::Round($v[1] / 1024.0, 1); Fds = $v[2]; IpcFds = $v[2] - $v[3]; Threads = $v[4] }
}
