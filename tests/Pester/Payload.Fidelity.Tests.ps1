# The CliXml fast path (src/PsIpc/FastCliXml.cs) must give exactly what PSSerializer gives after the trip.
BeforeAll {
    . $PSScriptRoot/common.ps1

    function Get-Shape($Value) {
        # Type names, then each property's name, type, kind (DateTime) and invariant text.
        $lines = @($Value.pstypenames)
        foreach ($p in $Value.psobject.Properties) {
            $v = $p.Value
            $text = if ($null -eq $v) { '<null>' } elseif ($v -is [datetime]) { '{0:o} {1}' -f $v, $v.Kind } else { [string]::Format([cultureinfo]::InvariantCulture, '{0}', $v) }
            $type = if ($null -eq $v) { '' } else { $v.GetType().FullName }
            $lines += '{0}|{1}|{2}' -f $p.Name, $type, $text
        }
        $lines -join "`n"
    }
}

Describe 'Objects sent as CliXml' {
    BeforeAll {
        $name = New-TestPipeName
        $server = New-IpcPipe -Name $name
        $client = New-IpcPipe -Name $name -Connect -TimeoutSeconds 10
    }
    AfterAll {
        $client, $server | Where-Object { $_ } | Close-IpcChannel
    }

    It 'arrive exactly as PSSerializer would deliver them: <Case>' -ForEach @(
        @{ Case = 'four common properties'; Value = [pscustomobject]@{ Id = 1; Name = 'item'; Value = 3.14; When = [datetime]::Now } }
        @{ Case = 'every fast-path type'; Value = [pscustomobject]@{ A = $null; B = $true; C = [long]5; D = [decimal]1.5; E = [guid]::NewGuid(); F = 'a<b>&c'; G = [double]::NaN; H = [datetime]::UtcNow; I = -1e300; J = [double]::NegativeInfinity; K = [int]::MinValue } }
        @{ Case = 'Select-Object output with its type name'; Value = (Get-Process -Id $PID | Select-Object Name, Id) }
        @{ Case = 'control characters (PSSerializer path)'; Value = [pscustomobject]@{ S = "tab`tline`nbreak`r" } }
        @{ Case = 'an _x escape look-alike (PSSerializer path)'; Value = [pscustomobject]@{ S = '_x0041_'; _xName = 1 } }
        @{ Case = 'a nested object (PSSerializer path)'; Value = [pscustomobject]@{ Inner = [pscustomobject]@{ X = 1 }; List = 1, 2 } }
        @{ Case = 'a quote and an apostrophe'; Value = [pscustomobject]@{ 'Quote"d' = "it's" } }
        @{ Case = 'names with & < > (PSSerializer path)'; Value = [pscustomobject]@{ 'R&D' = 1; 'a<b' = 'x'; PSTypeName = 'Dept&Co' } }
        @{ Case = 'values that came down a pipeline (PSObject-wrapped)'; Value = (7 | ForEach-Object { [pscustomobject]@{ Id = $_; When = ([datetime]'2026-01-02' | ForEach-Object { $_ }) } }) }
        @{ Case = 'a wrapped value with a member of its own (PSSerializer path)'; Value = [pscustomobject]@{ Id = (Add-Member -InputObject 5 -NotePropertyName Tag -NotePropertyValue 'x' -PassThru) } }
    ) {
        Send-IpcMessage $client $Value
        $received = Receive-IpcMessage $server -Count 1 -TimeoutSeconds 10
        $expected = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($Value, 2))

        Get-Shape $received | Should -Be (Get-Shape $expected)
    }

    It 'format, convert and compare as PSSerializer''s objects do (the receiver''s fast path)' {
        $value = [pscustomobject]@{ Id = 7; Name = 'a<b>&c'; When = [datetime]'2026-11-25T10:00:00'; Ok = $false }
        Send-IpcMessage $client $value
        $received = Receive-IpcMessage $server -Count 1 -TimeoutSeconds 10
        $expected = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($value, 2))

        $received.psobject.BaseObject.GetType() | Should -Be $expected.psobject.BaseObject.GetType()
        ($received | Format-Table | Out-String) | Should -Be ($expected | Format-Table | Out-String)
        ($received | Format-List | Out-String) | Should -Be ($expected | Format-List | Out-String)
        ($received | ConvertTo-Json -Compress) | Should -Be ($expected | ConvertTo-Json -Compress)
        "$received" | Should -Be "$expected"
        Compare-Object $received $expected -Property Id, Name, When, Ok | Should -BeNullOrEmpty
    }

    It 'sends a property that Update-TypeData adds after the first object of a type' {
        $type = 'PsIpc.Test.Late' + [guid]::NewGuid().ToString('N').Substring(0, 8)
        Send-IpcMessage $client ([pscustomobject]@{ PSTypeName = $type; A = 1 })
        (Receive-IpcMessage $server -Count 1 -TimeoutSeconds 10).psobject.Properties.Name | Should -Be 'A'
        Update-TypeData -TypeName $type -MemberType ScriptProperty -MemberName Extra -Value { 42 }
        try {
            Start-Sleep -Milliseconds 1100   # the fast path looks at a type's full member list again after a second
            Send-IpcMessage $client ([pscustomobject]@{ PSTypeName = $type; A = 2 })
            $received = Receive-IpcMessage $server -Count 1 -TimeoutSeconds 10
            $received.A | Should -Be 2
            $received.Extra | Should -Be 42
        }
        finally {
            Remove-TypeData -TypeName $type
        }
    }

    It 'reads CliXml of another writer (spacing, entity forms) as PSSerializer does' -ForEach @(
        @{ Case = 'spaces between elements'; Xml = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"> <Obj RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I32 N="X">1</I32></MS></Obj></Objs>' }
        @{ Case = 'a numeric character entity'; Xml = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><S N="X">&#65;&apos;</S></MS></Obj></Objs>' }
        @{ Case = 'an _x escape'; Xml = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><S N="X">_x0041_</S></MS></Obj></Objs>' }
        @{ Case = 'a ToString element'; Xml = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><ToString>custom</ToString><MS><I32 N="X">1</I32></MS></Obj></Objs>' }
    ) {
        $python = (Get-Command -Name python3 -CommandType Application | Select-Object -First 1).Source
        # A Python program sends the CliXml over the pipe, as examples/psipc_client.py's send_clixml does.
        $code = "import sys; sys.path.insert(0, sys.argv[1]); import psipc_client as pc`nwith pc.PsIpcClient.connect(sys.argv[2], timeout=10) as p: p.send_clixml(sys.argv[3])"
        $reader = New-IpcPipe -Name (New-TestPipeName)
        & $python -B -c $code (Join-Path $RepoRoot 'examples') $reader.Name $Xml
        $received = Receive-IpcMessage $reader -Count 1 -TimeoutSeconds 10
        Close-IpcChannel $reader
        $expected = [System.Management.Automation.PSSerializer]::Deserialize($Xml)

        Get-Shape $received | Should -Be (Get-Shape $expected)
        "$received" | Should -Be "$expected"
    }
}

Describe 'Objects cut at -Depth' {
    BeforeAll {
        $name = New-TestPipeName
        $server = New-IpcPipe -Name $name
        $client = New-IpcPipe -Name $name -Connect -TimeoutSeconds 10
    }
    AfterAll {
        $client, $server | Where-Object { $_ } | Close-IpcChannel
    }

    It 'warn once, naming the property that arrives as text' {
        $dir = Get-Item -LiteralPath $TestDrive
        $records = 1..3 | ForEach-Object { [pscustomobject]@{ Id = $_; Dir = $dir } }
        $records | Send-IpcMessage $client -Depth 1 -WarningVariable warnings -WarningAction SilentlyContinue
        $received = Receive-IpcMessage $server -Count 3 -TimeoutSeconds 10

        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -Match "'Dir\.[\w.]+'"
        $cutPath = ([regex]::Match($warnings[0].Message, "'(Dir\.[\w.]+)'")).Groups[1].Value
        $value = $received[0]
        foreach ($step in $cutPath.Split('.')) { $value = $value.$step }
        $value | Should -BeOfType [string] -Because "the warning announced that $cutPath arrives as text"
    }

    It 'say nothing when everything fits' {
        # Records nest without limit: PSSerializer spends depth only on .NET objects' properties.
        [pscustomobject]@{ Id = 1; Inner = [pscustomobject]@{ Leaf = [pscustomobject]@{ X = 1 } }; Map = @{ k = @{ k2 = 2 } } } |
            Send-IpcMessage $client -Depth 1 -WarningVariable warnings -WarningAction SilentlyContinue
        $received = Receive-IpcMessage $server -Count 1 -TimeoutSeconds 10

        $warnings.Count | Should -Be 0
        $received.Inner.Leaf.X | Should -Be 1
        $received.Map.k.k2 | Should -Be 2
    }
}
