# Shared by the worker scripts of bench/Invoke-Bench.ps1 (dot-source it).
# Each worker is a child pwsh process started by the harness; it prints exactly one JSON line as its
# result (Write-BenchResult) and fails with a terminating error otherwise.
# No Set-StrictMode here: it adds a check to every variable access inside the timed sink.

$script:BytesPayloadSize = 1MB

function New-BenchStrings {
    # $Count distinct 16-character strings: msg-000000000000, msg-000000000001, ...
    param([int] $Count)
    $strings = [string[]]::new($Count)
    for ($i = 0; $i -lt $Count; $i++) {
        $strings[$i] = 'msg-' + $i.ToString('D12')
    }
    , $strings
}

function New-BenchObjects {
    # $Count pscustomobjects with 4 properties of common types.
    param([int] $Count)
    $objects = [object[]]::new($Count)
    for ($i = 0; $i -lt $Count; $i++) {
        $objects[$i] = [pscustomobject]@{ Id = $i; Name = "item-$i"; Value = $i * 0.5; Flag = ($i % 2) -eq 0 }
    }
    , $objects
}

function New-BenchByteMessages {
    # $Count references to one 1 MiB byte[]: piping this array sends each byte[] as one item
    # (the pipeline unrolls only the outer array).
    param([int] $Count)
    $payload = [byte[]]::new($script:BytesPayloadSize)
    [Random]::new(42).NextBytes($payload)
    $messages = [object[]]::new($Count)
    for ($i = 0; $i -lt $Count; $i++) {
        $messages[$i] = $payload
    }
    , $messages
}

function New-BenchData {
    param([ValidateSet('Strings', 'Objects', 'Bytes')] [string] $Kind, [int] $Count)
    switch ($Kind) {
        'Strings' { New-BenchStrings $Count }
        'Objects' { New-BenchObjects $Count }
        'Bytes' { New-BenchByteMessages $Count }
    }
}

function Measure-BenchStream {
    # The counting sink every PowerShell receiver pipes into. It starts a stopwatch when it takes
    # the first item and stops it when the stream ends, so the figure is "first message to last",
    # excluding connection and start-up. A plain function with a process block: the cheapest
    # script sink (the pipeline floor rows measure its own cost).
    param([switch] $Bytes)
    begin {
        $count = 0
        $totalBytes = 0
        $first = $null
        $stopwatch = [System.Diagnostics.Stopwatch]::new()
    }
    process {
        if ($count -eq 0) {
            $stopwatch.Start()
            $first = $_
        }
        elseif ($Bytes) {
            $totalBytes += $_.Length
        }
        $count++
    }
    end {
        $stopwatch.Stop()
        [pscustomobject]@{
            Count      = $count
            Seconds    = $stopwatch.Elapsed.TotalSeconds
            TotalBytes = $totalBytes
            First      = $first
        }
    }
}

function Assert-BenchStream {
    # Checks what a receiver got: the count and the shape of the first message.
    param($Stream, [string] $Kind, [int] $Count)
    if ($Stream.Count -ne $Count) {
        throw "received $($Stream.Count) of $Count messages"
    }
    $first = $Stream.First
    $ok = switch ($Kind) {
        'Strings' { $first -is [string] -and $first.Length -eq 16 }
        # Start-Job adds PSComputerName, RunspaceId, ... to what it hands over.
        'Objects' { $null -ne $first -and @('Id', 'Name', 'Value', 'Flag' | Where-Object { $_ -notin $first.psobject.Properties.Name }).Count -eq 0 }
        'Bytes' { $first -is [byte[]] -and $first.Length -eq $script:BytesPayloadSize }
    }
    if (-not $ok) {
        $shown = if ($null -eq $first) { '$null' } else { "$($first.GetType().FullName) $first" }
        throw "the first message is not a $Kind message: $shown"
    }
}

function Get-BenchPeakWorkingSet {
    # VmHWM on Linux: the most resident memory this process has had.
    [System.Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64
}

function Write-BenchResult {
    param([System.Collections.IDictionary] $Result)
    [Console]::Out.WriteLine(([pscustomobject]$Result | ConvertTo-Json -Compress))
}
