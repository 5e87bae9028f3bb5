<#
    Help meta-tests: every exported cmdlet has complete help (from docs/cmdlets/*.md, turned into
    en-US/PsIpc.dll-Help.xml by the build), and the pages agree with the cmdlets they describe, so
    that help cannot drift from the code.
#>

BeforeDiscovery {
    . $PSScriptRoot/common.ps1
    $cmdletCases = @(Get-Command -Module PsIpc -CommandType Cmdlet | Sort-Object Name | ForEach-Object { @{ Name = $_.Name } })
    $pageCases = @(Get-ChildItem -Path (Join-Path $RepoRoot 'docs/cmdlets') -Filter *.md -File | Sort-Object Name |
            ForEach-Object { @{ Page = $_.Name; Path = $_.FullName } })
}

BeforeAll {
    . $PSScriptRoot/common.ps1
    $DocsRoot = Join-Path $RepoRoot 'docs/cmdlets'

    # Parameters every cmdlet has; -WhatIf/-Confirm are documented like any other parameter.
    $script:CommonParameters = [System.Management.Automation.Cmdlet]::CommonParameters

    function Read-CmdletPage {
        # A platyPS-schema page: front matter, title, ordered ## sections, ### subsections with their
        # text and fenced blocks. Headings inside fenced blocks are not headings.
        param([string] $Path)
        $lines = (Get-Content -LiteralPath $Path -Raw) -replace "`r`n", "`n" -split "`n"
        $page = @{ FrontMatter = [ordered]@{}; Title = $null; Sections = [ordered]@{} }
        $i = 0
        if ($lines[0] -eq '---') {
            for ($i = 1; $i -lt $lines.Count -and $lines[$i] -ne '---'; $i++) {
                if ($lines[$i] -match '^([^:]+):\s*(.*)$') { $page.FrontMatter[$Matches[1]] = $Matches[2].Trim() }
            }
            $i++
        }
        $section = $null; $sub = $null; $fence = $null
        for (; $i -lt $lines.Count; $i++) {
            $line = $lines[$i]
            if ($null -eq $fence -and $line -match '^```(\S*)\s*$') {
                $fence = @{ Lang = $Matches[1]; Lines = [System.Collections.Generic.List[string]]::new() }
                continue
            }
            if ($null -ne $fence) {
                if ($line -match '^```\s*$') {
                    $block = @{ Lang = $fence.Lang; Text = $fence.Lines -join "`n" }
                    if ($sub) { $sub.Blocks.Add($block) } elseif ($section) { $section.Blocks.Add($block) }
                    $fence = $null
                }
                else { $fence.Lines.Add($line) }
                continue
            }
            if ($line -match '^# (.+)$') { $page.Title = $Matches[1].Trim(); continue }
            if ($line -match '^## (.+)$') {
                $section = @{ Text = [System.Collections.Generic.List[string]]::new(); Blocks = [System.Collections.Generic.List[object]]::new(); Subs = [System.Collections.Generic.List[object]]::new() }
                $page.Sections[$Matches[1].Trim()] = $section
                $sub = $null
                continue
            }
            if ($line -match '^### (.+)$' -and $section) {
                $sub = @{ Title = $Matches[1].Trim(); Text = [System.Collections.Generic.List[string]]::new(); Blocks = [System.Collections.Generic.List[object]]::new() }
                $section.Subs.Add($sub)
                continue
            }
            if ($sub) { $sub.Text.Add($line) } elseif ($section) { $section.Text.Add($line) }
        }
        $page
    }

    function ConvertFrom-ParameterYaml {
        param([string] $Text)
        $map = @{}
        foreach ($line in $Text -split "`n") {
            if ($line -match '^([^:]+):\s*(.*)$') { $map[$Matches[1].Trim()] = $Matches[2].Trim() }
        }
        $map
    }

    function Get-ExpectedYaml {
        # What the yaml block of a parameter must say for one of its parameter sets.
        param([System.Management.Automation.ParameterMetadata] $Parameter, [string] $SetName)
        $attribute = $Parameter.ParameterSets[$SetName]
        $type = $Parameter.ParameterType
        if ($type.IsGenericType -and $type.GetGenericTypeDefinition() -eq [Nullable`1]) { $type = $type.GetGenericArguments()[0] }
        $pipeline = @(
            if ($attribute.ValueFromPipelineByPropertyName) { 'ByPropertyName' }
            if ($attribute.ValueFromPipeline) { 'ByValue' }
        )
        $wildcards = [bool]($Parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
        [ordered]@{
            'Type'                       = $type.Name
            'Required'                   = "$($attribute.IsMandatory)"
            'Position'                   = if ($attribute.Position -lt 0) { 'Named' } else { "$($attribute.Position)" }
            'Accept pipeline input'      = if ($pipeline) { "True ($($pipeline -join ', '))" } else { 'False' }
            'Accept wildcard characters' = "$wildcards"
        }
    }
}

Describe 'Help of <Name>' -ForEach $cmdletCases {
    BeforeAll {
        $command = Get-Command -Name $Name -Module PsIpc
        $help = Get-Help -Name $Name -Full
        $pagePath = Join-Path $DocsRoot "$Name.md"
        $documentedParameters = @($command.Parameters.Values | Where-Object { $_.Name -notin $CommonParameters })
    }

    It 'has a page docs/cmdlets/<Name>.md' {
        $pagePath | Should -Exist
    }

    It 'comes from the MAML help file, not from the syntax PowerShell makes up' {
        $help.PSObject.TypeNames | Should -Contain "MamlCommandHelpInfo#PsIpc#$Name#FullView" -Because 'the build writes en-US/PsIpc.dll-Help.xml from docs/cmdlets'
    }

    It 'has a synopsis' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis.Trim() | Should -Not -BeLike "$Name *" -Because 'without help, PowerShell shows the syntax as the synopsis'
    }

    It 'has a description' {
        ($help.description.Text -join '').Trim() | Should -Not -BeNullOrEmpty
    }

    It 'has at least one example with code and a remark' {
        $examples = @($help.examples.example)
        $examples.Count | Should -BeGreaterThan 0
        foreach ($example in $examples) {
            $example.code | Should -Not -BeNullOrEmpty -Because $example.title
            ($example.remarks.Text -join '').Trim() | Should -Not -BeNullOrEmpty -Because $example.title
        }
    }

    It 'describes every parameter' {
        $helpParameters = @{}
        foreach ($p in @($help.parameters.parameter)) { $helpParameters[$p.name] = ($p.description.Text -join '').Trim() }
        foreach ($p in $documentedParameters) {
            $helpParameters.ContainsKey($p.Name) | Should -BeTrue -Because "-$($p.Name) must be in the help"
            $helpParameters[$p.Name] | Should -Not -BeNullOrEmpty -Because "-$($p.Name) needs a description"
        }
    }

    It 'documents no parameter the cmdlet does not have' {
        foreach ($p in @($help.parameters.parameter)) {
            $command.Parameters.ContainsKey($p.name) | Should -BeTrue -Because "the help documents -$($p.name)"
        }
    }

    It 'has a syntax entry per parameter set' {
        @($help.syntax.syntaxItem).Count | Should -Be $command.ParameterSets.Count
    }
}

Describe 'Page <Page>' -ForEach $pageCases {
    BeforeAll {
        $doc = Read-CmdletPage -Path $Path
        $name = [System.IO.Path]::GetFileNameWithoutExtension($Path)
        $command = Get-Command -Name $name -Module PsIpc -ErrorAction SilentlyContinue
    }

    It 'describes a cmdlet the module exports' {
        $command | Should -Not -BeNullOrEmpty -Because "docs/cmdlets/$Page has no cmdlet"
        $doc.Title | Should -BeExactly $name
    }

    It 'has the platyPS front matter' {
        $doc.FrontMatter['external help file'] | Should -Be 'PsIpc.dll-Help.xml'
        $doc.FrontMatter['Module Name'] | Should -Be 'PsIpc'
        $doc.FrontMatter.Contains('online version') | Should -BeTrue
        $doc.FrontMatter['schema'] | Should -Be '2.0.0'
    }

    It 'has the platyPS sections in order' {
        @($doc.Sections.Keys) | Should -Be @('SYNOPSIS', 'SYNTAX', 'DESCRIPTION', 'EXAMPLES', 'PARAMETERS', 'INPUTS', 'OUTPUTS', 'NOTES', 'RELATED LINKS')
    }

    It 'has one syntax block per parameter set, each naming the parameters of its set' {
        $syntax = $doc.Sections['SYNTAX']
        $blocks = @(if ($syntax.Subs.Count) { foreach ($s in $syntax.Subs) { @{ Set = $s.Title -replace '\s*\(Default\)$'; Text = $s.Blocks[0].Text } } }
            else { @{ Set = $command.ParameterSets[0].Name; Text = $syntax.Blocks[0].Text } })
        $blocks.Count | Should -Be $command.ParameterSets.Count
        foreach ($block in $blocks) {
            $set = $command.ParameterSets | Where-Object Name -EQ $block.Set
            $set | Should -Not -BeNullOrEmpty -Because "the syntax block '$($block.Set)' must name a parameter set"
            $block.Text | Should -Match "^$name "
            $block.Text | Should -Match ([regex]::Escape('[<CommonParameters>]'))
            foreach ($p in $set.Parameters | Where-Object { $_.Name -notin $CommonParameters }) {
                $block.Text | Should -Match "-$($p.Name)\b" -Because "the '$($block.Set)' syntax must show -$($p.Name)"
            }
        }
    }

    It 'has examples titled "Example N: ..." with a powershell block and a remark' {
        $examples = @($doc.Sections['EXAMPLES'].Subs)
        $examples.Count | Should -BeGreaterThan 0
        for ($i = 0; $i -lt $examples.Count; $i++) {
            $examples[$i].Title | Should -Match "^Example $($i + 1): \S"
            @($examples[$i].Blocks | Where-Object Lang -EQ 'powershell').Count | Should -Be 1 -Because $examples[$i].Title
            ($examples[$i].Text -join '').Trim() | Should -Not -BeNullOrEmpty -Because "$($examples[$i].Title) needs a remark"
        }
    }

    It 'documents exactly the parameters of the cmdlet, and CommonParameters' {
        $titles = @($doc.Sections['PARAMETERS'].Subs.Title)
        $titles | Should -Contain 'CommonParameters'
        $documented = @($titles | Where-Object { $_ -ne 'CommonParameters' } | ForEach-Object { $_ -replace '^-' })
        $actual = @($command.Parameters.Keys | Where-Object { $_ -notin $CommonParameters })
        $documented | Sort-Object | Should -Be ($actual | Sort-Object)
    }

    It 'gives each parameter a description and yaml matching the cmdlet' {
        foreach ($sub in $doc.Sections['PARAMETERS'].Subs | Where-Object Title -NE 'CommonParameters') {
            $parameterName = $sub.Title -replace '^-'
            $parameter = $command.Parameters[$parameterName]
            ($sub.Text -join '').Trim() | Should -Not -BeNullOrEmpty -Because "-$parameterName needs a description"
            $yamls = @($sub.Blocks | Where-Object Lang -EQ 'yaml' | ForEach-Object { ConvertFrom-ParameterYaml $_.Text })
            $yamls.Count | Should -BeGreaterThan 0 -Because "-$parameterName needs a yaml block"

            foreach ($setName in $parameter.ParameterSets.Keys) {
                $label = if ($setName -eq '__AllParameterSets') { '(All)' } else { $setName }
                $yaml = $yamls | Where-Object { ($_['Parameter Sets'] -split ',\s*') -contains $label } | Select-Object -First 1
                $yaml | Should -Not -BeNullOrEmpty -Because "-$parameterName is in the parameter set '$label'"
                $expected = Get-ExpectedYaml -Parameter $parameter -SetName $setName
                foreach ($key in $expected.Keys) {
                    $yaml[$key] | Should -Be $expected[$key] -Because "'$key' of -$parameterName in '$label'"
                }
                $aliases = @($yaml['Aliases'] -split ',\s*' | Where-Object { $_ })
                ($aliases | Sort-Object) -join ',' | Should -Be (@($parameter.Aliases | Sort-Object) -join ',') -Because "the aliases of -$parameterName"
                $yaml['Default value'] | Should -Not -BeNullOrEmpty -Because "the default value of -$parameterName"
                $enumType = $parameter.ParameterType
                if ($enumType.IsEnum) {
                    $yaml['Accepted values'] | Should -Be ([enum]::GetNames($enumType) -join ', ') -Because "the values of -$parameterName"
                }
            }
        }
    }

    It 'names the error ids and the serialization rules in NOTES' {
        $notes = $doc.Sections['NOTES'].Text -join "`n"
        $notes | Should -Match 'Errors\.'
        $notes | Should -Match 'Serializ|survive'
    }

    It 'has related links' {
        ($doc.Sections['RELATED LINKS'].Text -join "`n") | Should -Match '\[[\w-]+\]\([\w-]+\.md\)'
    }
}

Describe 'The about_PsIpc topic' {
    It 'is found by Get-Help and covers the model, the transports, when to use PsIpc, security and troubleshooting' {
        $help = Get-Help about_PsIpc
        $help.Name | Should -Be 'about_PsIpc'
        $text = $help | Out-String
        foreach ($heading in 'THE MODEL', 'THE TRANSPORTS', 'WHEN TO USE PSIPC', 'SECURITY DEFAULTS', 'TROUBLESHOOTING') {
            $text | Should -Match $heading
        }
        $text | Should -Match 'Leftover shared memory segments'
        Test-Path -LiteralPath (Join-Path $env:PSIPC_MODULE_PATH 'en-US/about_PsIpc.help.txt') | Should -BeTrue
    }
}
