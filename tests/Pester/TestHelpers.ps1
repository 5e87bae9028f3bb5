<#
    Helpers for the Pester tests, on top of common.ps1. Every test file starts with

        BeforeAll {
            . $PSScriptRoot/common.ps1
            . $PSScriptRoot/TestHelpers.ps1
        }

    and defines:

        Start-TestPwshChild   Start-PwshChild, remembered so that Clear-TestState kills it if it is still running
        Start-PythonPeer      python3 running a snippet that has the PsIpc wire protocol helpers (PythonProtocol)
        Start-HttpProbe       a python3 peer sending the start of an HTTP request to a TCP port
        Read-PeerLine         the next line a child or python peer prints, with a timeout
        Stop-TestProcess      kill -9 (SIGKILL) a process and wait for it to be gone
        Register-TestPath     a file (the socket of a child's pipe) that Clear-TestState deletes after the processes
        Get-PipePath          where the socket of a pipe name lives: $TMPDIR/CoreFxPipe_<name>
        New-TestShmName       a shared memory name of this run (cleanup: Get-SharedMemory -Name "$TestShmPrefix*")
        Wait-Until            polls a condition until it holds or a timeout passes
        Stop-WhenWaiting      Ctrl+C (PowerShell.Stop) for a command in another runspace, once its wait has begun
        Clear-TestState       closes every channel this process has open and kills the processes started here

    UDP peers use udp_socket() and udp_frame() (docs/protocol.md, section 11: a datagram is one message).

    Python peers speak the protocol of src/PsIpc.Transport/Framing: a 5-byte header (u32 LE payload
    length, type byte) then the payload; the first frame each side sends is a Hello
    ("PSIPC" | version 1 | flags | reserved | pid u32 LE | max message size u32 LE).
#>

$script:PsIpcTestProcesses = [System.Collections.Generic.List[System.Diagnostics.Process]]::new()
$script:PsIpcTestPaths = [System.Collections.Generic.List[string]]::new()
$script:Python = (Get-Command -Name python3 -CommandType Application -ErrorAction Stop | Select-Object -First 1).Source

# Prepended to every python peer: the wire protocol, as a Python program that knows nothing of PsIpc would write it.
$script:PythonProtocol = @'
import os, socket, struct, sys, time
HELLO, GOODBYE, ERROR, TEXT, BYTES, CLIXML, JSON = 0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13

def frame(kind, payload):
    return struct.pack('<IB', len(payload), kind) + payload

def hello(max_size=64 * 1024 * 1024):
    return frame(HELLO, b'PSIPC' + bytes([1, 0, 0]) + struct.pack('<II', os.getpid(), max_size))

def text(s):
    return frame(TEXT, s.encode('utf-8'))

def recv_exact(sock, n):
    data = b''
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data

def read_frame(sock):
    header = recv_exact(sock, 5)
    if header is None:
        return None
    length, kind = struct.unpack('<IB', header)
    payload = recv_exact(sock, length) if length else b''
    return kind, payload

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s

def say(*words):
    print(*words, flush=True)

def accept_one(path):
    # A server at a pipe's path that says 'ready' once it listens, then takes one client.
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    say('ready')
    conn, _ = srv.accept()
    return srv, conn

def hang(seconds=120):
    time.sleep(seconds)

def udp_socket(family=socket.AF_INET, host='127.0.0.1', timeout=30):
    # A UDP socket on a free loopback port; every recv gives up after the timeout (socket.timeout).
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(timeout)
    return s

def udp_frame(datagram):
    # The (type, payload) of a LengthPrefixed UDP datagram: one whole frame.
    length, kind = struct.unpack('<IB', datagram[:5])
    assert length == len(datagram) - 5, 'a datagram holds exactly one frame'
    return kind, datagram[5:]
'@

function Register-TestProcess {
    param([Parameter(Mandatory, ValueFromPipeline)] [System.Diagnostics.Process] $Process)
    process {
        $script:PsIpcTestProcesses.Add($Process)
        $Process
    }
}

function Register-TestPath {
    param([Parameter(Mandatory)] [string] $Path)
    $script:PsIpcTestPaths.Add($Path)
}

function Get-PipePath {
    param([Parameter(Mandatory)] [string] $Name)
    Join-Path ([System.IO.Path]::GetTempPath()) "CoreFxPipe_$Name"
}

function Start-TestPwshChild {
    <#
    .SYNOPSIS
        Start-PwshChild (common.ps1) whose process Clear-TestState kills if it is still running.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)] [scriptblock] $ScriptBlock,
        [object[]] $ArgumentList = @(),
        [switch] $KeepStandardInput
    )
    Start-PwshChild -ScriptBlock $ScriptBlock -ArgumentList $ArgumentList -KeepStandardInput:$KeepStandardInput | Register-TestProcess
}

function Start-PythonPeer {
    <#
    .SYNOPSIS
        Runs python3 -u -c (PythonProtocol + Code) with the arguments in sys.argv[1:]; standard output
        and error redirected. The process is remembered for Clear-TestState.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)] [string] $Code,
        [string[]] $ArgumentList = @()
    )
    $psi = [System.Diagnostics.ProcessStartInfo]::new($script:Python)
    $psi.ArgumentList.Add('-u')
    $psi.ArgumentList.Add('-c')
    $psi.ArgumentList.Add($script:PythonProtocol + "`n" + $Code)
    foreach ($a in $ArgumentList) { $psi.ArgumentList.Add([string]$a) }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $process = [System.Diagnostics.Process]::Start($psi)
    $process.StandardInput.Close()
    $process | Add-Member -NotePropertyName StdErrTask -NotePropertyValue $process.StandardError.ReadToEndAsync()
    $process | Register-TestProcess
}

function Start-HttpProbe {
    <#
    .SYNOPSIS
        A python3 peer that connects to 127.0.0.1:Port, sends the start of an HTTP request, as a browser
        driven by a web page would, and prints repr() of what it gets back (b'' when the server hangs up).
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)] [int] $Port)
    Start-PythonPeer @'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
say(repr(s.recv(1024)))
'@ -ArgumentList $Port
}

# Shared memory names of this test run: cleanup by wildcard never touches another run's segments.
$script:TestShmPrefix = 'shmt-{0}-' -f [guid]::NewGuid().ToString('N').Substring(0, 6)

function New-TestShmName {
    <#
    .SYNOPSIS
        A fresh shared memory name of this test run ($TestShmPrefix and 8 random hex digits).
    #>
    '{0}{1}' -f $script:TestShmPrefix, [guid]::NewGuid().ToString('N').Substring(0, 8)
}

function Read-PeerLine {
    <#
    .SYNOPSIS
        The next line the process prints on standard output; throws after -TimeoutSeconds or at its end
        (with what it wrote to standard error, when that is known).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)] [System.Diagnostics.Process] $Process,
        [double] $TimeoutSeconds = 30
    )
    $task = $Process.StandardOutput.ReadLineAsync()
    if (-not $task.Wait([int]($TimeoutSeconds * 1000))) {
        throw "Process $($Process.Id) printed no line within $TimeoutSeconds s."
    }
    $line = $task.Result
    if ($null -eq $line) {
        $stderr = ''
        if ($Process.PSObject.Properties['StdErrTask'] -and $Process.WaitForExit(5000)) { $stderr = $Process.StdErrTask.GetAwaiter().GetResult() }
        throw "Process $($Process.Id) ended its output without the expected line. stderr: $stderr"
    }
    $line
}

function Stop-TestProcess {
    <#
    .SYNOPSIS
        kill -9 (SIGKILL: no cleanup runs in the process) and wait until it is gone.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, ValueFromPipeline)] [System.Diagnostics.Process] $Process)
    process {
        if (-not $Process.HasExited) {
            & kill -9 $Process.Id 2>$null
            $null = $Process.WaitForExit(10000)
        }
    }
}

function Wait-Until {
    <#
    .SYNOPSIS
        Polls -Condition every 20 ms; true as soon as it holds, false when -TimeoutSeconds passed first.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param(
        [Parameter(Mandatory, Position = 0)] [scriptblock] $Condition,
        [double] $TimeoutSeconds = 10
    )
    $sw = [System.Diagnostics.Stopwatch]::StartNew()
    while ($sw.Elapsed.TotalSeconds -lt $TimeoutSeconds) {
        if (& $Condition) { return $true }
        Start-Sleep -Milliseconds 20
    }
    [bool](& $Condition)
}

function Stop-WhenWaiting {
    <#
    .SYNOPSIS
        Starts -PowerShell (BeginInvoke), waits until the PsIpc command in it is blocked in its wait, then stops
        it as Ctrl+C does (PowerShell.Stop) and returns the stopped invocation's state and the waiters left.
    .DESCRIPTION
        The state Running is no sign of a wait: it is already Running while Import-Module runs, so a stop
        then ends the script before the cmdlet waits, and a test of Ctrl+C passes without testing it. The
        product counts its waits instead: -Channel's Waiters (a Send, Receive, Flush or Close blocked on
        that channel) or, without -Channel, IpcChannel.ConnectWaiters (a connect that waits for a pipe,
        a socket or a broker), counted from the moment the call holds the token that Ctrl+C cancels.
        Throws when the wait has not begun, or the stop has not ended it, within -TimeoutSeconds (safety
        nets), or when the command ended before it was stopped. The output object: State (Stopped after a real stop), Waiters (what the
        same counter says after the stop: 0 when the wait ended), Handle, Output.
    .EXAMPLE
        $r = Stop-WhenWaiting -PowerShell $ps -Channel $server
        $r.State | Should -Be 'Stopped'
        $r.Waiters | Should -Be 0
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)] [powershell] $PowerShell,
        [PsIpc.Transport.Channels.IpcChannel] $Channel,
        # A further state to wait for, together with the wait (e.g. how many messages went before).
        [scriptblock] $Until = { $true },
        [double] $TimeoutSeconds = 60
    )
    $count = if ($Channel) { { $Channel.Waiters } } else { { [PsIpc.Transport.Channels.IpcChannel]::ConnectWaiters } }
    $before = [int](& $count)
    $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
    $handle = $PowerShell.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $output)
    $began = Wait-Until { ((& $count) -gt $before -and (& $Until)) -or $handle.IsCompleted } -TimeoutSeconds $TimeoutSeconds
    if ($handle.IsCompleted) {
        $why = @($PowerShell.Streams.Error | ForEach-Object { $_.FullyQualifiedErrorId }) -join ', '
        throw "The command ended before it was stopped (state $($PowerShell.InvocationStateInfo.State); errors: $why)."
    }
    if (-not $began) { throw "No wait began within $TimeoutSeconds s (waiters: $(& $count), $before before)." }
    # BeginStop, so that a wait that ignores Ctrl+C fails the test after a generous safety net instead of hanging it.
    $stopping = $PowerShell.BeginStop($null, $null)
    if (-not $stopping.AsyncWaitHandle.WaitOne([int]($TimeoutSeconds * 1000))) { throw "The stopped command still ran after $TimeoutSeconds s." }
    $PowerShell.EndStop($stopping)
    [pscustomobject]@{
        State   = $PowerShell.InvocationStateInfo.State
        Waiters = [int](& $count) - $before
        Handle  = $handle
        Output  = $output
    }
}

function Clear-TestState {
    <#
    .SYNOPSIS
        Closes every channel open in this process (1 s each at most), kills the processes started
        with Start-TestPwshChild / Start-PythonPeer that are still running and deletes the files
        given to Register-TestPath.
    #>
    [CmdletBinding()]
    param()
    foreach ($channel in @(Get-IpcChannel)) {
        try { Close-IpcChannel -Channel $channel -TimeoutSeconds 1 -ErrorAction SilentlyContinue } catch { }
    }
    foreach ($process in @($script:PsIpcTestProcesses)) {
        try { Stop-TestProcess -Process $process } catch { }
        $process.Dispose()
    }
    $script:PsIpcTestProcesses.Clear()
    # Sockets of killed servers (a SIGKILLed process cannot delete its socket file).
    foreach ($path in $script:PsIpcTestPaths) {
        Remove-Item -LiteralPath $path -Force -ErrorAction SilentlyContinue
    }
    $script:PsIpcTestPaths.Clear()
}
