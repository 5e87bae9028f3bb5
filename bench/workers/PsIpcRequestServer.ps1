# Request/reply rows (bench/lib/BenchRequest.ps1), server side: serves one client on a pipe until it leaves.
#   -Kind ScriptBlock: New-IpcPipe -ScriptBlock { param($message) $message } (the module's handler).
#   -Kind Compiled: a C# loop over the channel contract: Receive, then Reply to each request (no PowerShell per message).
# Reports how many requests it answered.
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Name,
    [Parameter(Mandatory)] [ValidateSet('ScriptBlock', 'Compiled')] [string] $Kind
)
$ErrorActionPreference = 'Stop'
. $PSScriptRoot/BenchWorker.ps1
Import-Module $ModulePath

if ($Kind -eq 'ScriptBlock') {
    $server = New-IpcPipe -Name $Name -MaxClients 1 -ScriptBlock { param($message) $message }
    # The handler serves on its own threads; this process only waits for the client to come and go.
    $deadline = [DateTime]::UtcNow.AddSeconds(600)
    while (($server.ConnectionsAccepted -eq 0 -or $server.PeerCount -gt 0) -and [DateTime]::UtcNow -lt $deadline) {
        Start-Sleep -Milliseconds 50
    }
    $answered = $server.Handler.MessagesHandled
    Close-IpcChannel $server
    Write-BenchResult ([ordered]@{ messages = $answered; handlerErrors = $server.HandlerErrors })
    return
}

$transport = [PsIpc.Transport.Channels.IpcChannel].Assembly.Location
Add-Type -ReferencedAssemblies $transport, 'netstandard', 'System.Collections', 'System.Threading', 'System.Runtime' -TypeDefinition @'
using System.Collections.Generic;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;

public static class BenchCompiledEcho
{
    // Until every client came and went (-MaxClients 1): each request answered with its own payload.
    public static long Serve(IpcChannel server)
    {
        var batch = new List<IpcMessage>(64);
        long answered = 0;
        while (true)
        {
            batch.Clear();
            if (server.Receive(batch, 64, Deadline.Infinite, CancellationToken.None) < 0) return answered;
            foreach (IpcMessage request in batch)
            {
                if (request.Fault != null) continue;
                request.Sender.Reply(request, request.Format, request.Payload, Deadline.Infinite, CancellationToken.None);
                answered++;
            }
        }
    }
}
'@
$server = New-IpcPipe -Name $Name -MaxClients 1
try {
    $answered = [BenchCompiledEcho]::Serve($server)
}
finally {
    Close-IpcChannel $server
}
Write-BenchResult ([ordered]@{ messages = $answered; handlerErrors = 0 })
