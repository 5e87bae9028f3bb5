<#
.SYNOPSIS
    Turns platyPS-schema cmdlet pages (docs/cmdlets/*.md) into one MAML help file.

.DESCRIPTION
    The build uses platyPS's New-ExternalHelp when platyPS is installed. platyPS cannot be installed
    here, so this script does the same job for the subset of the platyPS 2.0.0 markdown schema the
    project writes:

        ---                                   front matter (online version: becomes a related link)
        # Verb-Noun
        ## SYNOPSIS                           paragraphs
        ## SYNTAX                             ### SetName (Default) + a ``` block per parameter set
        ## DESCRIPTION                        paragraphs
        ## EXAMPLES                           ### Example 1: title, text, ```powershell block, text
        ## PARAMETERS                         ### -Name, description, ```yaml block (one per set if
                                              they differ), ### CommonParameters (skipped)
        ## INPUTS / ## OUTPUTS                ### TypeName + description
        ## NOTES                              paragraphs
        ## RELATED LINKS                      [text](uri) lines

    The XML has the shape New-ExternalHelp writes (helpItems/command:command with command:details,
    maml:description, command:syntax, command:parameters, command:inputTypes, command:returnValues,
    maml:alertSet, command:examples, command:relatedLinks), which is what Get-Help reads.

.EXAMPLE
    ./build/ConvertTo-Maml.ps1 -Path docs/cmdlets -OutputPath output/PsIpc/en-US/PsIpc.dll-Help.xml
#>
[CmdletBinding()]
param(
    # Markdown files, or folders whose *.md files are read.
    [Parameter(Mandatory)] [string[]] $Path,
    # The MAML file to write (folders are created).
    [Parameter(Mandatory)] [string] $OutputPath
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$Namespaces = @{
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
    MSHelp  = 'http://msdn.microsoft.com/mshelp'
}

#region Markdown parsing

function Split-Page {
    # Returns @{ FrontMatter; Title; Sections = ordered name -> @{ Lines; Subs = list of @{ Title; Lines } } }
    param([string] $File)

    $lines = [System.IO.File]::ReadAllText($File) -replace "`r`n", "`n" -split "`n"
    $page = @{ File = $File; FrontMatter = @{}; Title = $null; Sections = [ordered]@{} }
    $i = 0
    if ($lines.Count -gt 0 -and $lines[0].Trim() -eq '---') {
        for ($i = 1; $i -lt $lines.Count -and $lines[$i].Trim() -ne '---'; $i++) {
            if ($lines[$i] -match '^\s*([^:#]+?)\s*:\s*(.*?)\s*$') { $page.FrontMatter[$Matches[1]] = $Matches[2] }
        }
        $i++
    }

    $section = $null; $sub = $null; $inFence = $false
    for (; $i -lt $lines.Count; $i++) {
        $line = $lines[$i]
        if ($line -match '^\s*(```|~~~)') { $inFence = -not $inFence }
        if (-not $inFence -and $line -match '^(#{1,3})\s+(.*?)(?:\s+#+)?\s*$') {
            $level = $Matches[1].Length; $text = $Matches[2]
            if ($level -eq 1) { $page.Title = $text; $section = $null; $sub = $null; continue }
            if ($level -eq 2) {
                $section = @{ Lines = [System.Collections.Generic.List[string]]::new(); Subs = [System.Collections.Generic.List[object]]::new() }
                $page.Sections[$text.ToUpperInvariant()] = $section
                $sub = $null
                continue
            }
            if ($level -eq 3 -and $section) {
                $sub = @{ Title = $text; Lines = [System.Collections.Generic.List[string]]::new() }
                $section.Subs.Add($sub)
                continue
            }
        }
        if ($sub) { $sub.Lines.Add($line) } elseif ($section) { $section.Lines.Add($line) }
    }
    if (-not $page.Title) { throw "${File}: no '# Verb-Noun' title." }
    $page
}

function Get-Block {
    # Splits lines into blocks: @{ Kind = 'code'; Lang; Text } for fenced code, @{ Kind = 'text'; Lines } otherwise.
    param([string[]] $Lines)

    $blocks = [System.Collections.Generic.List[object]]::new()
    $text = [System.Collections.Generic.List[string]]::new()
    $code = $null
    $flush = {
        if ($text.Count) { $blocks.Add(@{ Kind = 'text'; Lines = $text.ToArray() }); $text.Clear() }
    }
    foreach ($line in $Lines) {
        if ($null -ne $code) {
            if ($line -match '^\s*(```|~~~)\s*$') {
                $blocks.Add(@{ Kind = 'code'; Lang = $code.Lang; Text = ($code.Lines -join "`n") })
                $code = $null
            }
            else { $code.Lines.Add($line) }
        }
        elseif ($line -match '^\s*(?:```|~~~)\s*([\w-]*)') {
            & $flush
            $code = @{ Lang = $Matches[1]; Lines = [System.Collections.Generic.List[string]]::new() }
        }
        elseif ($line.Trim() -eq '') { & $flush }
        else { $text.Add($line) }
    }
    & $flush
    if ($null -ne $code) { $blocks.Add(@{ Kind = 'code'; Lang = $code.Lang; Text = ($code.Lines -join "`n") }) }
    , $blocks.ToArray()
}

function ConvertTo-Paragraph {
    # Text blocks become one paragraph each: soft line breaks join with a space, except in lists and
    # tables, which keep their lines. Code blocks are kept verbatim as their own paragraph.
    param([object[]] $Blocks)

    foreach ($b in $Blocks) {
        if ($b.Kind -eq 'code') { $b.Text; continue }
        $lines = @($b.Lines | ForEach-Object { $_.TrimEnd() })
        if (@($lines | Where-Object { $_ -match '^\s*([-*+]|\d+\.)\s|^\s*\|' }).Count) { $lines -join "`n" }
        else { ($lines | ForEach-Object { $_.Trim() }) -join ' ' }
    }
}

function Get-Paragraph {
    param([string[]] $Lines)
    @(ConvertTo-Paragraph (Get-Block $Lines))
}

function ConvertFrom-ParameterYaml {
    param([string] $Text)
    $map = @{}
    foreach ($line in $Text -split "`n") {
        if ($line -match '^\s*([^:]+?)\s*:\s*(.*?)\s*$') { $map[$Matches[1]] = $Matches[2] }
    }
    $sets = @(($map['Parameter Sets'] ?? '(All)') -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ })
    $aliases = @(($map['Aliases'] ?? '') -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ -and $_ -ne 'None' })
    $accepted = @(($map['Accepted values'] ?? '') -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ })
    @{
        Type          = if ($map['Type']) { $map['Type'] } else { 'Object' }
        Sets          = $sets
        Aliases       = $aliases
        AcceptedValue = $accepted
        Required      = ($map['Required'] ?? 'False') -match '^\s*True'
        Position      = if ($map['Position']) { $map['Position'].ToLowerInvariant() } else { 'named' }
        Default       = if ($map['Default value']) { $map['Default value'] } else { 'None' }
        Pipeline      = if ($map['Accept pipeline input']) { $map['Accept pipeline input'] } else { 'False' }
        Globbing      = ($map['Accept wildcard characters'] ?? 'False') -match '^\s*True'
    }
}

function ConvertFrom-CmdletPage {
    # Reads one page into a plain model of the command.
    param([string] $File)

    $page = Split-Page $File
    $name = $page.Title
    $s = $page.Sections
    $empty = @{ Lines = @(); Subs = @() }
    foreach ($required in 'SYNOPSIS', 'SYNTAX', 'DESCRIPTION', 'PARAMETERS') {
        if (-not $s.Contains($required)) { throw "${File}: no '## $required' section." }
    }

    # Parameters, with one attribute set per parameter set when the page gives several yaml blocks.
    $parameters = foreach ($sub in $s['PARAMETERS'].Subs) {
        if ($sub.Title -notmatch '^-(\S+)') { continue }   # ### CommonParameters and the like
        $blocks = Get-Block $sub.Lines
        $yaml = @($blocks | Where-Object { $_.Kind -eq 'code' -and $_.Lang -in 'yaml', 'yml', '' })
        if (-not $yaml) { throw "${File}: parameter $($sub.Title) has no ``````yaml block." }
        @{
            Name        = $Matches[1]
            Description = @(ConvertTo-Paragraph @($blocks | Where-Object { $_ -notin $yaml }))
            Variants    = @($yaml | ForEach-Object { ConvertFrom-ParameterYaml $_.Text })
        }
    }

    # Parameter sets: from ## SYNTAX (### SetName headings, or one untitled block), parameter order
    # as written in each syntax block.
    $syntaxBlocks = @()
    $syntax = $s['SYNTAX']
    if ($syntax.Subs.Count) {
        foreach ($sub in $syntax.Subs) {
            $code = @(Get-Block $sub.Lines | Where-Object { $_.Kind -eq 'code' })
            $syntaxBlocks += @{ Set = ($sub.Title -replace '\s*\(Default\)\s*$', '').Trim(); Text = (($code | ForEach-Object { $_.Text }) -join "`n") }
        }
    }
    else {
        $code = @(Get-Block $syntax.Lines | Where-Object { $_.Kind -eq 'code' })
        $syntaxBlocks += @{ Set = '__AllParameterSets'; Text = (($code | ForEach-Object { $_.Text }) -join "`n") }
    }
    $syntaxItems = [System.Collections.Generic.List[object]]::new()
    foreach ($sb in $syntaxBlocks) {
        $index = 0
        $items = foreach ($p in $parameters) {
            $index++
            $variant = $p.Variants | Where-Object { $_.Sets -contains $sb.Set -or $_.Sets -contains '(All)' } | Select-Object -First 1
            if (-not $variant -and $syntaxBlocks.Count -eq 1) { $variant = $p.Variants[0] }
            if (-not $variant) { continue }
            $m = [regex]::Match($sb.Text, "(?<![\w-])-$([regex]::Escape($p.Name))(?![\w-])", 'IgnoreCase')
            # Parameters the syntax block does not show keep their PARAMETERS order, after the others.
            $order = if ($m.Success) { $m.Index } else { [int]::MaxValue / 2 + $index }
            @{ Parameter = $p; Variant = $variant; Order = $order }
        }
        $syntaxItems.Add(@($items | Sort-Object { $_.Order }))
    }

    $typed = {
        param($section)
        if (-not $s.Contains($section)) { return }
        if ($s[$section].Subs.Count) {
            foreach ($sub in $s[$section].Subs) { @{ Type = $sub.Title; Description = @(Get-Paragraph $sub.Lines) } }
        }
        else {
            foreach ($para in Get-Paragraph $s[$section].Lines) { @{ Type = $para; Description = @() } }
        }
    }

    $examples = if ($s.Contains('EXAMPLES')) {
        foreach ($sub in $s['EXAMPLES'].Subs) {
            $blocks = Get-Block $sub.Lines
            @{
                Title   = $sub.Title
                Code    = (@($blocks | Where-Object { $_.Kind -eq 'code' } | ForEach-Object { $_.Text }) -join "`n`n")
                Remarks = @(ConvertTo-Paragraph @($blocks | Where-Object { $_.Kind -eq 'text' }))
            }
        }
    }

    $links = [System.Collections.Generic.List[object]]::new()
    if ($page.FrontMatter['online version']) { $links.Add(@{ Text = 'Online Version:'; Uri = $page.FrontMatter['online version'] }) }
    if ($s.Contains('RELATED LINKS')) {
        foreach ($line in $s['RELATED LINKS'].Lines) {
            if ($line -match '\[([^\]]+)\]\(([^)]*)\)') {
                # Links to sibling pages (Receive-IpcMessage.md) name a topic; only web addresses are URIs.
                $text, $target = $Matches[1], $Matches[2]
                $links.Add(@{ Text = $text; Uri = if ($target -match '^https?://') { $target } else { '' } })
            }
            elseif ($line -match '^\s*[-*+]?\s*(\S.*?)\s*$') { $links.Add(@{ Text = $Matches[1]; Uri = '' }) }
        }
    }

    @{
        Name        = $name
        Synopsis    = @(Get-Paragraph $s['SYNOPSIS'].Lines)
        Description = @(Get-Paragraph $s['DESCRIPTION'].Lines)
        Syntax      = $syntaxItems.ToArray()
        Parameters  = @($parameters)
        Inputs      = @(& $typed 'INPUTS')
        Outputs     = @(& $typed 'OUTPUTS')
        Notes       = @(if ($s.Contains('NOTES')) { Get-Paragraph $s['NOTES'].Lines })
        Examples    = @($examples)
        Links       = $links.ToArray()
    }
}

#endregion

#region MAML writing

function Write-Node {
    # <prefix:name [attributes]>text</prefix:name>; a script block writes the children instead.
    param($Writer, [string] $Name, $Content, [System.Collections.IDictionary] $Attributes = @{})
    $prefix, $local = $Name -split ':', 2
    $Writer.WriteStartElement($prefix, $local, $Namespaces[$prefix])
    foreach ($key in $Attributes.Keys) { $Writer.WriteAttributeString($key, [string]$Attributes[$key]) }
    if ($Content -is [scriptblock]) { & $Content }
    elseif ($null -ne $Content) { $Writer.WriteString([string]$Content) }
    $Writer.WriteEndElement()
}

function Write-Para {
    param($Writer, [string[]] $Paragraphs)
    if (-not $Paragraphs) { $Paragraphs = @('') }
    foreach ($p in $Paragraphs) { Write-Node $Writer 'maml:para' $p }
}

function Write-Parameter {
    param($Writer, $Parameter, $Variant, [switch] $InSyntax)
    $attributes = [ordered]@{
        required       = "$($Variant.Required)".ToLowerInvariant()
        variableLength = 'true'
        globbing       = "$($Variant.Globbing)".ToLowerInvariant()
        pipelineInput  = $Variant.Pipeline
        position       = $Variant.Position
        aliases        = if ($Variant.Aliases) { $Variant.Aliases -join ', ' } else { 'none' }
    }
    $isSwitch = $Variant.Type -in 'SwitchParameter', 'Switch', 'System.Management.Automation.SwitchParameter'
    $type = if ($isSwitch) { 'SwitchParameter' } else { $Variant.Type }
    Write-Node $Writer 'command:parameter' -Attributes $attributes {
        Write-Node $Writer 'maml:name' $Parameter.Name
        Write-Node $Writer 'maml:Description' { Write-Para $Writer $Parameter.Description }
        if ($InSyntax -and $Variant.AcceptedValue) {
            Write-Node $Writer 'command:parameterValueGroup' {
                foreach ($value in $Variant.AcceptedValue) {
                    Write-Node $Writer 'command:parameterValue' $value -Attributes ([ordered]@{ required = 'false'; variableLength = 'false' })
                }
            }
        }
        if (-not ($InSyntax -and $isSwitch)) {
            $valueAttributes = [ordered]@{ required = if ($isSwitch) { 'false' } else { 'true' }; variableLength = 'false' }
            Write-Node $Writer 'command:parameterValue' $type -Attributes $valueAttributes
        }
        Write-Node $Writer 'dev:type' { Write-Node $Writer 'maml:name' $type; Write-Node $Writer 'maml:uri' '' }
        Write-Node $Writer 'dev:defaultValue' $Variant.Default
    }
}

function Write-Command {
    param($Writer, $Command)
    $verb, $noun = $Command.Name -split '-', 2
    $Writer.WriteStartElement('command', 'command', $Namespaces.command)
    foreach ($prefix in 'maml', 'command', 'dev', 'MSHelp') {
        $Writer.WriteAttributeString('xmlns', $prefix, $null, $Namespaces[$prefix])
    }
    Write-Node $Writer 'command:details' {
        Write-Node $Writer 'command:name' $Command.Name
        Write-Node $Writer 'command:verb' $verb
        Write-Node $Writer 'command:noun' $noun
        Write-Node $Writer 'maml:description' { Write-Para $Writer $Command.Synopsis }
    }
    Write-Node $Writer 'maml:description' { Write-Para $Writer $Command.Description }
    Write-Node $Writer 'command:syntax' {
        foreach ($item in $Command.Syntax) {
            Write-Node $Writer 'command:syntaxItem' {
                Write-Node $Writer 'maml:name' $Command.Name
                foreach ($entry in $item) { Write-Parameter $Writer $entry.Parameter $entry.Variant -InSyntax }
            }
        }
    }
    Write-Node $Writer 'command:parameters' {
        foreach ($p in $Command.Parameters) { Write-Parameter $Writer $p $p.Variants[0] }
    }
    foreach ($kind in @(@('command:inputTypes', 'command:inputType', 'Inputs'), @('command:returnValues', 'command:returnValue', 'Outputs'))) {
        Write-Node $Writer $kind[0] {
            foreach ($t in $Command[$kind[2]]) {
                Write-Node $Writer $kind[1] {
                    Write-Node $Writer 'dev:type' { Write-Node $Writer 'maml:name' $t.Type }
                    Write-Node $Writer 'maml:description' { Write-Para $Writer $t.Description }
                }
            }
        }
    }
    Write-Node $Writer 'maml:alertSet' { Write-Node $Writer 'maml:alert' { Write-Para $Writer $Command.Notes } }
    Write-Node $Writer 'command:examples' {
        foreach ($e in $Command.Examples) {
            Write-Node $Writer 'command:example' {
                Write-Node $Writer 'maml:title' "-------------------------- $($e.Title) --------------------------"
                Write-Node $Writer 'dev:code' $e.Code
                Write-Node $Writer 'dev:remarks' { Write-Para $Writer $e.Remarks }
            }
        }
    }
    Write-Node $Writer 'command:relatedLinks' {
        foreach ($link in $Command.Links) {
            Write-Node $Writer 'maml:navigationLink' {
                Write-Node $Writer 'maml:linkText' $link.Text
                Write-Node $Writer 'maml:uri' $link.Uri
            }
        }
    }
    $Writer.WriteEndElement()
}

#endregion

$files = foreach ($p in $Path) {
    if (Test-Path -LiteralPath $p -PathType Container) { Get-ChildItem -LiteralPath $p -Filter *.md -File | Sort-Object Name }
    else { Get-Item -LiteralPath $p }
}
$commands = @(foreach ($f in $files) { ConvertFrom-CmdletPage $f.FullName })
if (-not $commands) { throw "No cmdlet pages found in $($Path -join ', ')." }

$OutputPath = [System.IO.Path]::GetFullPath($OutputPath, (Get-Location -PSProvider FileSystem).ProviderPath)
$null = New-Item -ItemType Directory -Force -Path ([System.IO.Path]::GetDirectoryName($OutputPath))
$settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; IndentChars = '  '; Encoding = [System.Text.UTF8Encoding]::new($false) }
$writer = [System.Xml.XmlWriter]::Create($OutputPath, $settings)
try {
    $writer.WriteStartDocument()
    $writer.WriteStartElement('helpItems', 'http://msh')
    $writer.WriteAttributeString('schema', 'maml')
    foreach ($c in $commands) { Write-Command $writer $c }
    $writer.WriteEndElement()
    $writer.WriteEndDocument()
}
finally { $writer.Dispose() }

Write-Verbose "Wrote $OutputPath ($($commands.Count) commands)"
Get-Item -LiteralPath $OutputPath
