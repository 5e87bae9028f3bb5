# Measurements, targets and the report (console table + docs/benchmarks.md) for bench/Invoke-Bench.ps1.

$script:Invariant = [cultureinfo]::InvariantCulture

# How a worker's JSON result becomes a figure, per unit.
$script:UnitValue = @{
    'msg/s'    = { param($r) $r.messages / $r.seconds }
    'GB/s'     = { param($r) $r.bytes / $r.seconds / 1e9 }
    'µs/trip'  = { param($r) $r.seconds / $r.messages * 1e6 }
    'MiB peak' = { param($r) $r.peakWorkingSet / 1MB }
    'trips/s'  = { param($r) $r.messages / $r.seconds }
    'errors'   = { param($r) $r.errors }
    's'        = { param($r) $r.seconds }
    'threads'  = { param($r) $r.peakThreads }
    'MiB'      = { param($r) $r.workingSet / 1MB }
}

function Measure-Repeated {
    # Runs $Run (which returns one JSON result) $script:Repetitions times; the first failure ends
    # the series and is kept as its error.
    param(
        [Parameter(Mandatory)] [string] $Label,
        [Parameter(Mandatory)] [scriptblock] $Run,
        [int] $Repetitions = $script:Repetitions
    )
    $results = [System.Collections.Generic.List[object]]::new()
    $errorMessage = $null
    for ($repetition = 1; $repetition -le $Repetitions; $repetition++) {
        Write-Host ("  {0,-48} run {1}/{2} ..." -f $Label, $repetition, $Repetitions) -NoNewline
        $stopwatch = [System.Diagnostics.Stopwatch]::StartNew()
        try {
            $results.Add((& $Run))
            Write-Host (" {0:N1} s" -f $stopwatch.Elapsed.TotalSeconds)
        }
        catch {
            $errorMessage = $_.Exception.Message
            Write-Host ' ERROR' -ForegroundColor Red
            Write-Host "    $errorMessage" -ForegroundColor Red
            break
        }
    }
    [pscustomobject]@{ Label = $Label; Results = $results.ToArray(); Error = $errorMessage }
}

function Get-Median {
    param([double[]] $Values)
    $sorted = [double[]]($Values | Sort-Object)
    $middle = [int][Math]::Floor($sorted.Count / 2)
    if ($sorted.Count % 2) { $sorted[$middle] } else { ($sorted[$middle - 1] + $sorted[$middle]) / 2 }
}

function New-Measurement {
    # One line of the results table, from a series of runs. $Value overrides the unit's default
    # conversion (e.g. the wall clock of a job run).
    param(
        [Parameter(Mandatory)] [string] $Row,
        [Parameter(Mandatory)] [string] $Implementation,
        [Parameter(Mandatory)] [string] $Unit,
        [Parameter(Mandatory)] $Runs,
        [string] $Count = '',
        [scriptblock] $Value = $script:UnitValue[$Unit]
    )
    $values = [double[]]@(foreach ($result in $Runs.Results) { & $Value $result })
    $measurement = [pscustomobject]@{
        Row            = $Row
        Implementation = $Implementation
        Count          = $Count
        Unit           = $Unit
        Status         = if ($Runs.Error) { 'ERROR' } else { 'OK' }
        Error          = $Runs.Error
        Median         = if ($Runs.Error -or $values.Count -eq 0) { $null } else { Get-Median $values }
        Values         = $values
    }
    $script:Measurements.Add($measurement)
    $measurement
}

function Format-Figure {
    param($Value, [string] $Unit)
    if ($null -eq $Value) { return 'ERROR' }
    $format = switch ($Unit) {
        'msg/s' { 'N0' }
        'GB/s' { 'N2' }
        'µs/trip' { 'N1' }
        'MiB peak' { 'N1' }
        'MiB' { 'N1' }
        'threads' { 'N0' }
        'trips/s' { 'N0' }
        'errors' { 'N0' }
        's' { 'N1' }
        default { 'N2' }
    }
    $Value.ToString($format, $script:Invariant)
}

function Find-Measurement {
    param([string] $Row, [string] $Implementation)
    $script:Measurements | Where-Object { $_.Row -eq $Row -and $_.Implementation -eq $Implementation } |
        Select-Object -First 1
}

function New-Target {
    # A target from the issue: $Measured compared with $Required (a ratio, or MiB for memory).
    param(
        [Parameter(Mandatory)] [string] $Name,
        [Parameter(Mandatory)] [string] $Requirement,
        [object[]] $Inputs,
        [Parameter(Mandatory)] [scriptblock] $Evaluate
    )
    $failed = @($Inputs | Where-Object { $null -eq $_ -or $_.Status -ne 'OK' })
    if ($failed.Count -gt 0) {
        $missing = ($failed | ForEach-Object { if ($_) { $_.Implementation } else { 'a measurement' } }) -join ', '
        return [pscustomobject]@{ Name = $Name; Requirement = $Requirement; Measured = "no figure ($missing)"; Result = 'ERROR' }
    }
    $medians = @($Inputs.Median)
    $measured, $pass = & $Evaluate @medians
    [pscustomobject]@{ Name = $Name; Requirement = $Requirement; Measured = $measured; Result = $pass ? 'PASS' : 'MISS' }
}

function Format-Ratio {
    param([double] $Ratio)
    $Ratio.ToString('0.00', $script:Invariant) + 'x'
}

function Get-ResultRows {
    foreach ($m in $script:Measurements) {
        [pscustomobject]@{
            Row            = $m.Row
            Implementation = $m.Implementation
            Median         = Format-Figure $m.Median $m.Unit
            Unit           = $m.Unit
            'N per run'    = if ($m.Count -as [long]) { ([long]$m.Count).ToString('N0', $script:Invariant) } else { $m.Count }
            Runs           = if ($m.Status -eq 'OK') { ($m.Values | ForEach-Object { Format-Figure $_ $m.Unit }) -join ' / ' } else { $m.Error }
        }
    }
}

function ConvertTo-MarkdownTable {
    param([Parameter(Mandatory)] [object[]] $Rows)
    $columns = $Rows[0].psobject.Properties.Name
    '| ' + ($columns -join ' | ') + ' |'
    '|' + (($columns | ForEach-Object { '---' }) -join '|') + '|'
    foreach ($row in $Rows) {
        $cells = foreach ($column in $columns) { ([string]$row.$column) -replace '\|', '\|' -replace '\r?\n', ' ' }
        '| ' + ($cells -join ' | ') + ' |'
    }
}

function ConvertTo-TextTable {
    # Plain aligned columns for the console (Format-Table cuts lines at the console width).
    param([Parameter(Mandatory)] [object[]] $Rows)
    $columns = @($Rows[0].psobject.Properties.Name)
    $lines = [System.Collections.Generic.List[string[]]]::new()
    $lines.Add([string[]]$columns)
    foreach ($row in $Rows) {
        $lines.Add([string[]]@(foreach ($column in $columns) { [string]$row.$column }))
    }
    $widths = foreach ($i in 0..($columns.Count - 1)) {
        ($lines | ForEach-Object { $_[$i].Length } | Measure-Object -Maximum).Maximum
    }
    $lines.Insert(1, [string[]]@(foreach ($width in $widths) { '-' * $width }))
    foreach ($line in $lines) {
        (@(foreach ($i in 0..($columns.Count - 1)) { $line[$i].PadRight($widths[$i]) }) -join '  ').TrimEnd()
    }
}
