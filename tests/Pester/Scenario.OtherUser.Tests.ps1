<#
    Another local user (issue 13, item 4): a second Unix user cannot connect to the first user's pipe,
    open its shared memory segment, connect to its Unix socket server or read its shared memory queue,
    and gets the documented error id each time.

    Why two new users, and neither is root: root passes every file permission check (CAP_DAC_OVERRIDE),
    so objects of root tried by another user, or objects of a user tried by root, prove nothing about the
    modes PsIpc sets. The test (root: it creates the users) makes an OWNER and an INTRUDER, both ordinary
    users, and runs a pwsh as each. The pwsh of the tests is a dotnet tool under root's home (~/.nuget,
    ~/.dotnet/tools: mode 0700, out of other users' reach), so pwsh ($PSHOME) and the staged module are
    copied to a directory everyone may read; the dotnet host (/usr/share/dotnet) is readable by all.
    Both users get TMPDIR=/tmp, where .NET puts pipe sockets, so they share one pipe namespace.

    Processes run as a user through setpriv, which executes pwsh in its own process (runuser forks and
    waits, so killing its process id would leave pwsh behind). Users and files are removed afterwards.
    Not root: under CI=true that fails with the reason; elsewhere the tests are skipped, with the reason.
#>

BeforeDiscovery {
    $uid = (& id -u) -as [int]
    $missing = @('useradd', 'userdel', 'setpriv' | Where-Object { -not (Get-Command $_ -CommandType Application -ErrorAction SilentlyContinue) })
    $Reason = if ($uid -ne 0) { "creating Unix users needs root; this runs as uid $uid" }
    elseif ($missing) { "missing commands: $($missing -join ', ')" }
    else { $null }
    # Under CI the machine is root: a missing prerequisite is a failure there (BeforeAll throws it), never a skip.
    $SkipAll = [bool]$Reason -and $env:CI -ne 'true'
    if ($SkipAll) { Write-Host "Scenario.OtherUser.Tests.ps1 is skipped: $Reason." }
}

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    $uid = (& id -u) -as [int]
    $missing = @('useradd', 'userdel', 'setpriv' | Where-Object { -not (Get-Command $_ -CommandType Application -ErrorAction SilentlyContinue) })
    if (($uid -ne 0 -or $missing) -and $env:CI -ne 'true') { return }   # the Describe is skipped, with the reason
    if ($uid -ne 0) { throw "The other-user tests create Unix users (useradd) and need root; this runs as uid $uid. Run them as root (CI machines are)." }
    if ($missing) { throw "The other-user tests need $($missing -join ', ')." }

    $tag = [guid]::NewGuid().ToString('N').Substring(0, 6)
    $script:Users = @("psipco$tag", "psipci$tag")   # owner, intruder
    $script:Base = "/tmp/psipc-users-$tag"          # /tmp, not $TMPDIR: both users must reach it
    $null = New-Item -ItemType Directory -Path $script:Base
    & chmod 755 $script:Base
    Copy-Item -LiteralPath $PSHOME -Destination "$script:Base/pwsh" -Recurse
    Copy-Item -LiteralPath $env:PSIPC_MODULE_PATH -Destination "$script:Base/PsIpc" -Recurse
    & chmod -R a+rX $script:Base
    $exe = [Environment]::ProcessPath
    $script:DotnetHost = if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $exe } else { (Get-Command dotnet -CommandType Application -ErrorAction Stop | Select-Object -First 1).Source }

    foreach ($user in $script:Users) {
        & useradd --create-home --shell /usr/sbin/nologin $user
        if ($LASTEXITCODE -ne 0) { throw "useradd $user failed ($LASTEXITCODE)." }
    }
    $script:OwnerUid = [int](& id -u $script:Users[0])

    function Start-UserPwsh {
        # A pwsh (the copy) as -User with the copied PsIpc imported, running -Script; standard input stays open.
        param([string] $User, [string] $Script, [string[]] $ArgumentList = @())
        $userUid = [int](& id -u $User)
        $userGid = [int](& id -g $User)
        $quoted = foreach ($a in $ArgumentList) { "'" + ($a -replace "'", "''") + "'" }
        $text = "`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'; Import-Module '$script:Base/PsIpc'`n& {`n$Script`n} $($quoted -join ' ')" 
        $psi = [System.Diagnostics.ProcessStartInfo]::new('setpriv')
        foreach ($a in "--reuid=$userUid", "--regid=$userGid", '--clear-groups', '--', $script:DotnetHost, "$script:Base/pwsh/pwsh.dll",
            '-NoProfile', '-NonInteractive', '-EncodedCommand', [Convert]::ToBase64String([System.Text.Encoding]::Unicode.GetBytes($text))) {
            $psi.ArgumentList.Add($a)
        }
        $psi.UseShellExecute = $false
        $psi.RedirectStandardInput = $true
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $psi.WorkingDirectory = $script:Base
        $psi.Environment['HOME'] = "/home/$User"
        $psi.Environment['USER'] = $User
        $psi.Environment['TMPDIR'] = '/tmp'
        $psi.Environment['NO_COLOR'] = '1'
        $psi.Environment.Remove('PSIPC_SHM_DIR') | Out-Null
        $psi.Environment.Remove('PSModulePath') | Out-Null
        $process = [System.Diagnostics.Process]::Start($psi)
        $process | Add-Member -NotePropertyName StdErrTask -NotePropertyValue $process.StandardError.ReadToEndAsync() -PassThru | Register-TestProcess
    }

    # The owner: a pipe server, a segment, a queue holding one message, a Unix socket server in a directory of
    # its own; then it waits for a line on standard input and reports what reached its objects meanwhile.
    $script:Names = @{ Pipe = "psipcou-$tag"; Segment = "ouseg-$tag"; Queue = "ouq-$tag"; Socket = "/tmp/psipc-ousock-$tag/owner.sock" }
    $script:Owner = Start-UserPwsh -User $script:Users[0] -Script @'
$pipe = New-IpcPipe -Name $args[0]
$segment = New-SharedMemory -Name $args[1] -Size 4096
Write-SharedMemory -SharedMemory $segment -InputObject 'the owner''s secret'
$queue = New-SharedMemory -Name $args[2] -Size 4096 -Queue
'the owner''s message' | Send-IpcMessage -Channel $queue
$server = Start-IpcSocketServer -Path $args[3]
"ready $($pipe.Address) $((Get-SharedMemory -Name $args[1]).Path)"
$null = [Console]::In.ReadLine()
"pipe clients $($pipe.ClientsAccepted)"
"socket clients $($server.ConnectionsAccepted)"
"queue holds $(Receive-IpcMessage -Channel $queue -Count 1 -TimeoutSeconds 5)"
Close-IpcChannel -Channel $pipe, $segment, $queue
Remove-SharedMemory -Name $args[1], $args[2] -Confirm:$false
Stop-IpcSocketServer -Server $server -Confirm:$false
'done'
'@ -ArgumentList $script:Names.Pipe, $script:Names.Segment, $script:Names.Queue, $script:Names.Socket
    # pwsh takes its time on a loaded machine: these are safety nets.
    $script:Ready = Read-PeerLine $script:Owner -TimeoutSeconds 300
    # The modes, as the owner made them (they are gone once it closes its objects).
    $pipePath, $segmentPath = ($script:Ready -split ' ')[1, 2]
    $script:Modes = foreach ($path in $pipePath, $segmentPath, (Split-Path $segmentPath), (Split-Path $script:Names.Socket), $script:Names.Socket) {
        $item = Get-Item -LiteralPath $path -Force
        [pscustomobject]@{ Path = $path; Mode = $item.UnixMode; User = $item.User }
    }

    # The intruder tries each object the ways it can name it, and prints one line per try: label, error id.
    $intruder = Start-UserPwsh -User $script:Users[1] -Script @'
# Inside the script blocks below $args is their own: name the arguments first.
$pipeName, $segmentName, $queueName, $socketPath, $ownerDirectory = $args
function Try-Access([string] $Label, [scriptblock] $Action) {
    try { $null = & $Action; "$Label <no error>" }
    catch { "$Label $($_.FullyQualifiedErrorId)" }
}
Try-Access pipe { New-IpcPipe -Name $pipeName -Connect -TimeoutSeconds 30 -ErrorAction Stop }
Try-Access socket { Connect-IpcSocket -Path $socketPath -TimeoutSeconds 30 -ErrorAction Stop }
# By name: segment names are per user (/dev/shm/psipc-<uid>), so another user's are not even in reach.
Try-Access segment-by-name { New-SharedMemory -Name $segmentName -Open -ErrorAction Stop }
Try-Access queue-by-name { New-SharedMemory -Name $queueName -Open -ErrorAction Stop }
# Through the owner's directory, which PSIPC_SHM_DIR may name (docs/cmdlets/New-SharedMemory.md).
$env:PSIPC_SHM_DIR = $ownerDirectory
Try-Access segment { New-SharedMemory -Name $segmentName -Open -ErrorAction Stop }
Try-Access queue { $q = New-SharedMemory -Name $queueName -Open -ErrorAction Stop; Receive-IpcMessage -Channel $q -TimeoutSeconds 5 -ErrorAction Stop }
Try-Access list { Get-SharedMemory -ErrorAction Stop }
'end'
'@ -ArgumentList $script:Names.Pipe, $script:Names.Segment, $script:Names.Queue, $script:Names.Socket, "/dev/shm/psipc-$script:OwnerUid"
    $script:Tries = @{}
    while (($line = Read-PeerLine $intruder -TimeoutSeconds 300) -ne 'end') {
        $label, $id = $line -split ' ', 2
        $script:Tries[$label] = $id
    }
    $Owner.StandardInput.WriteLine('report')
    $script:OwnerReport = @(
        for ($i = 0; $i -lt 4; $i++) { Read-PeerLine $script:Owner -TimeoutSeconds 120 }
    )
}

AfterAll {
    Clear-TestState
    foreach ($user in @($script:Users)) {
        if ($user) { & userdel --remove --force $user 2>$null }
    }
    foreach ($path in @($script:Base, $(if ($script:Names) { Split-Path $script:Names.Socket }), $(if ($script:OwnerUid) { "/dev/shm/psipc-$script:OwnerUid" }))) {
        if ($path) { Remove-Item -LiteralPath $path -Recurse -Force -ErrorAction SilentlyContinue }
    }
    if ($script:Names) { Remove-Item -LiteralPath "/tmp/CoreFxPipe_$($script:Names.Pipe)" -Force -ErrorAction SilentlyContinue }
}

Describe 'Another local user' -Skip:$SkipAll {
    It 'is refused by the first user''s pipe with AccessDenied' {
        $Tries['pipe'] | Should -Be 'AccessDenied,PsIpc.Commands.NewIpcPipeCommand'
    }

    It 'is refused by the first user''s Unix socket server with AccessDenied' {
        $Tries['socket'] | Should -Be 'AccessDenied,PsIpc.Commands.ConnectIpcSocketCommand'
    }

    It 'cannot open the first user''s segment: not by name (SharedMemoryNotFound), not through its directory (AccessDenied)' {
        $Tries['segment-by-name'] | Should -Be 'SharedMemoryNotFound,PsIpc.Commands.NewSharedMemoryCommand' -Because 'names are looked up in the user''s own directory'
        $Tries['segment'] | Should -Be 'AccessDenied,PsIpc.Commands.NewSharedMemoryCommand'
        $Tries['list'] | Should -Be 'AccessDenied,PsIpc.Commands.GetSharedMemoryCommand'
    }

    It 'cannot read the first user''s queue: not by name (SharedMemoryNotFound), not through its directory (AccessDenied)' {
        $Tries['queue-by-name'] | Should -Be 'SharedMemoryNotFound,PsIpc.Commands.NewSharedMemoryCommand'
        $Tries['queue'] | Should -Be 'AccessDenied,PsIpc.Commands.NewSharedMemoryCommand'
    }

    It 'took nothing from the first user: no client reached its servers, its queue still holds its message' {
        $OwnerReport[0] | Should -Be 'pipe clients 0'
        $OwnerReport[1] | Should -Be 'socket clients 0'
        $OwnerReport[2] | Should -Be 'queue holds the owner''s message'
        $OwnerReport[3] | Should -Be 'done'
    }

    It 'made its objects with the modes that keep other users out: files 0600, directories 0700, of the owner' {
        $expected = 'srw-------', '-rw-------', 'drwx------', 'drwx------', 'srw-------'
        for ($i = 0; $i -lt $expected.Count; $i++) {
            $Modes[$i].Mode | Should -Be $expected[$i] -Because $Modes[$i].Path
            $Modes[$i].User | Should -Be $Users[0] -Because $Modes[$i].Path
        }
    }
}
