<#
.SYNOPSIS
    A PowerShell pipe server talking to a Python program: examples/psipc_client.py, standard library only.

.DESCRIPTION
    1. PowerShell creates a pipe server (New-IpcPipe) and starts the Python client with the pipe's name.
    2. Python connects, exchanges Hello frames with the server, and sends a Text, a Bytes and a Json
       message.
    3. PowerShell receives them with -Envelope, shows what each became on this side ([string],
       [byte[]], [pscustomobject]) and replies to the sender: text, reversed bytes, and JSON.
    4. PowerShell also sends an object in the default format, CliXml, which Python receives as XML text.
    5. Python prints the four replies and says Goodbye; the server's Receive-IpcMessage ends because
       its only client has left.

    Needs python3 (or python) 3.8+ on PATH. The wire format is in docs/protocol.md.

.EXAMPLE
    dotnet pwsh -NoProfile -File examples/python-peer.ps1
#>
[CmdletBinding()]
param(
    # Seconds each side waits for the other.
    [double] $TimeoutSeconds = 15
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$modulePath = if ($env:PSIPC_MODULE_PATH) { $env:PSIPC_MODULE_PATH } else { Join-Path $PSScriptRoot '../output/PsIpc' }
$modulePath = [System.IO.Path]::GetFullPath($modulePath)
if (-not (Test-Path -LiteralPath (Join-Path $modulePath 'PsIpc.psd1'))) {
    throw "PsIpc is not staged at '$modulePath'. Run: dotnet pwsh -NoProfile -File ./build.ps1 Build"
}
Import-Module -Name $modulePath

$python = Get-Command -Name python3, python -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
if (-not $python) { throw 'This example needs Python 3 (python3 or python on PATH).' }
$client = Join-Path $PSScriptRoot 'psipc_client.py'

function Show([string] $Text) { Write-Host "pwsh:   $Text" }

$server = New-IpcPipe
$process = $null
try {
    Show "serving the pipe '$($server.Name)' at $($server.Address)"

    # The Python client: three messages to send, four replies to wait for.
    $start = [System.Diagnostics.ProcessStartInfo]::new($python.Source)
    foreach ($argument in @(
            $client, $server.Name,
            '--text', 'Hello, IPC!',
            '--bytes', '00010203ff',
            '--json', '{"tool": "python", "numbers": [1, 2, 3]}',
            '--receive', '4',
            '--timeout', "$TimeoutSeconds")) {
        $start.ArgumentList.Add($argument)
    }
    $start.UseShellExecute = $false
    $start.Environment['PYTHONIOENCODING'] = 'utf-8'
    $process = [System.Diagnostics.Process]::Start($start)   # its output goes to this console
    Show "started $($python.Name) (process $($process.Id))"

    Receive-IpcMessage -Channel $server -Count 3 -Envelope -TimeoutSeconds $TimeoutSeconds -ErrorAction Stop | ForEach-Object {
        $envelope = $_
        $body = $envelope.Body
        switch ($envelope.Format) {
            'Text' {
                Show "got Text from process $($envelope.SenderProcessId) as [$($body.GetType().Name)]: $body"
                Send-IpcMessage -Channel $envelope.Sender -InputObject "echo: $body"
            }
            'Bytes' {
                Show "got Bytes as [$($body.GetType().Name)]: $(($body | ForEach-Object { $_.ToString('x2') }) -join ' ')"
                [array]::Reverse($body)
                Send-IpcMessage -Channel $envelope.Sender -InputObject $body
            }
            'Json' {
                Show "got Json as [$($body.GetType().Name)]: tool = $($body.tool), numbers = $($body.numbers -join ', ')"
                $answer = [pscustomobject]@{ from = 'PowerShell'; sum = [long]($body.numbers | Measure-Object -Sum).Sum; psVersion = "$($PSVersionTable.PSVersion)" }
                Send-IpcMessage -Channel $envelope.Sender -InputObject $answer -Format Json
            }
        }
    }

    # Anything that is not a string or a byte array goes as CliXml; Python gets the XML text.
    Send-IpcMessage -Channel $server -InputObject ([pscustomobject]@{ Greeting = 'CliXml is for PowerShell peers' })
    Show 'replied to all three, and sent one object as CliXml'

    # No -Count: this ends when the only client (-MaxClients 1) has said goodbye.
    Receive-IpcMessage -Channel $server -TimeoutSeconds $TimeoutSeconds -ErrorAction Stop
    Show 'the Python client has gone'

    if (-not $process.WaitForExit([int]($TimeoutSeconds * 1000))) { throw 'The Python client did not exit.' }
    $process.WaitForExit()
    if ($process.ExitCode -ne 0) { throw "The Python client exited with code $($process.ExitCode)." }
    Show 'done'
}
finally {
    if ($process -and -not $process.HasExited) { $process.Kill() }
    Close-IpcChannel -Channel $server
}
